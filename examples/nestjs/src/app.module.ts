import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { PostHogModule } from '@posthog-kit/nestjs';
import { AuthGuard } from './auth.guard.ts';
import { ReportsService } from './reports.service.ts';
import { SignupController } from './signup.controller.ts';

@Module({
  imports: [
    ScheduleModule.forRoot(),
    // Settings from POSTHOG_PROJECT_API_KEY, POSTHOG_HOST, ...; code options win.
    PostHogModule.forRoot({ captureViews: true }),
  ],
  controllers: [SignupController],
  providers: [ReportsService, { provide: APP_GUARD, useClass: AuthGuard }],
})
export class AppModule {}
