// NestJS on Fastify: the same app as nestjs.ts on @nestjs/platform-fastify.
import type { Config } from './common.ts';
import { startOn } from './nestjs.ts';

export const start = (config: Config, port: number) => startOn('fastify', config, port);
