import { Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { capture, PostHogJob, PostHogKit } from '@posthog-kit/nestjs';

@Injectable()
export class ReportsService {
  readonly kit: PostHogKit;
  constructor(kit: PostHogKit) {
    this.kit = kit;
  }

  // A service: the sugar has the request's context, no injection needed.
  build(id: string): never {
    capture('report_requested', { properties: { id } });
    throw new Error('report generator crashed');
  }

  // Each run in a context of its own, tagged job: 'hourly-digest'; its errors captured.
  @Cron(CronExpression.EVERY_HOUR)
  @PostHogJob('hourly-digest')
  sendDigest(): void {
    this.kit.capture('digest_sent', { distinctId: 'digest-bot' });
  }
}
