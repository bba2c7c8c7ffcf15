import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { capture, PostHog, type PostHogHandle } from '@posthog-kit/nestjs';
import { ReportsService } from './reports.service.ts';

@Controller()
export class SignupController {
  readonly reports: ReportsService;
  constructor(reports: ReportsService) {
    this.reports = reports;
  }

  @Post('signup')
  signup(@Body() body: { plan?: string }) {
    // The request's context: the signed-in user (id, email), $current_url, $ip, ...
    capture('signed_up', { properties: { plan: body.plan ?? 'free' } });
    return { welcome: true };
  }

  @Get('dashboard')
  async dashboard(@PostHog() posthog: PostHogHandle) {
    const v2 = await posthog.featureEnabled('new-dashboard');
    return { dashboard: v2 ? 'v2' : 'v1' };
  }

  @Get('reports/:id')
  report(@Param('id') id: string) {
    // Throws: Nest answers 500 and the error is captured once, with the request's context.
    return this.reports.build(id);
  }
}
