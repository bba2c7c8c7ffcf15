// Summarises a V8 .cpuprofile: self time by area (ours, posthog-node, the framework,
// Node, GC, idle) and the top functions.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const AREAS: Array<[string, RegExp]> = [
  ['posthog-kit', /\/packages\/(core|express|koa|hono|h3|fastify|nestjs)\/|@posthog-kit/],
  ['posthog-node', /posthog-node|@posthog\+core|@posthog\/core/],
  ['framework', /express|router|koa|hono|h3|srvx|rou3|fastify|find-my-way|@nestjs|rxjs/],
  ['node', /^node:/],
];

function areaOf(frame: ProfileNode['callFrame']): string {
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : 'native';
  for (const [area, pattern] of AREAS) if (pattern.test(frame.url)) return area;
  return 'other';
}

export function summarise(
  file: string,
  top = 20,
): { areas: Record<string, number>; functions: Array<[string, number]> } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const timeOf = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    timeOf.set(id, (timeOf.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  let total = 0;
  const areas: Record<string, number> = {};
  const functions = new Map<string, number>();
  for (const node of profile.nodes) {
    const t = timeOf.get(node.id) ?? 0;
    total += t;
    const frame = node.callFrame;
    const area = areaOf(frame);
    areas[area] = (areas[area] ?? 0) + t;
    const where = frame.url
      .replace(/.*node_modules\/\.pnpm\/([^/]+)\/.*/, '$1')
      .replace(/.*\/packages\//, '');
    const key = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + t);
  }
  const pct = (t: number) => Number(((100 * t) / total).toFixed(1));
  return {
    areas: Object.fromEntries(
      Object.entries(areas)
        .map(([k, v]) => [k, pct(v)])
        .sort((a, b) => (b[1] as number) - (a[1] as number)),
    ),
    functions: [...functions]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, pct(v)]),
  };
}
