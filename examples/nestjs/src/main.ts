import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.ts';

const app = await NestFactory.create(AppModule);
// SIGTERM/SIGINT: Nest closes the server, then PostHogModule sends what is queued.
app.enableShutdownHooks();
await app.listen(process.env.PORT ?? 3000);
console.log(`NestJS app on ${await app.getUrl()}: POST /signup, GET /dashboard, GET /reports/1`);
