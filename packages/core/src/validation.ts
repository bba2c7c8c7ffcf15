import { describeError } from './errors.ts';
import type { ResolvedSettings } from './settings.ts';

const TIMEOUT_MS = 10_000;

async function request(fetchImpl: typeof fetch, url: string, init: RequestInit) {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const res = await fetchImpl(url, { ...init, signal });
  await res.body?.cancel().catch(() => {});
  return res.status;
}

/**
 * Checks the keys and host for real: one validation event, then (with a personal
 * key) one flag definitions fetch. Returns what is wrong, naming the setting, or
 * undefined when all is well. Never puts a key in the text.
 */
export async function validateSetup(
  settings: ResolvedSettings,
  fetchImpl: typeof fetch,
): Promise<string | undefined> {
  const { host, apiKey, personalApiKey } = settings;
  if (!apiKey) return 'POSTHOG_PROJECT_API_KEY: not set, so the kit is disabled';

  const body = JSON.stringify({
    api_key: apiKey,
    batch: [
      {
        event: settings.validateEventName,
        distinct_id: settings.validateDistinctId,
        properties: { $lib: 'posthog-kit', $process_person_profile: false },
        timestamp: new Date().toISOString(),
      },
    ],
    sent_at: new Date().toISOString(),
  });
  let status: number;
  try {
    status = await request(fetchImpl, `${host}/batch/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
  } catch (error) {
    return `POSTHOG_HOST: could not reach ${host} (${describeError(error)})`;
  }
  if (status === 401 || status === 403) {
    return `POSTHOG_PROJECT_API_KEY: rejected by ${host} (HTTP ${status}); check the project API key`;
  }
  if (status < 200 || status >= 300) {
    return `POSTHOG_HOST: ${host} answered the validation event with HTTP ${status}; is it a PostHog host?`;
  }

  // Store-only processes never ask PostHog for definitions, not even to validate.
  if (!personalApiKey || settings.flagDefinitionsSource === 'store') return undefined;
  try {
    status = await request(
      fetchImpl,
      `${host}/flags/definitions?token=${encodeURIComponent(apiKey)}&send_cohorts`,
      { method: 'GET', headers: { Authorization: `Bearer ${personalApiKey}` } },
    );
  } catch (error) {
    return `POSTHOG_HOST: could not fetch flag definitions from ${host} (${describeError(error)})`;
  }
  if (status === 401 || status === 403) {
    return `POSTHOG_PERSONAL_API_KEY: rejected by ${host} (HTTP ${status}); it needs feature flag read access to this project`;
  }
  if (status === 402) {
    return `POSTHOG_PERSONAL_API_KEY: ${host} answered HTTP 402, the feature flag quota is exceeded`;
  }
  if (status < 200 || status >= 300) {
    return `POSTHOG_HOST: ${host} answered the flag definitions request with HTTP ${status}`;
  }
  return undefined;
}
