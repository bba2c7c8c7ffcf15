import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  type ContextStorage,
  ContextStore,
  defaultContextStorage,
  getContextDistinctId,
  getContextSessionId,
  getTags,
  identifyContext,
  setCaptureExceptionCodeVariablesContext,
  setCodeVariablesIgnorePatternsContext,
  setCodeVariablesMaskPatternsContext,
  setContextSession,
  tag,
  withContext,
} from '../src/index.ts';

type Scope = Parameters<ContextStore['run']>[0];
const current = () => new ContextStore(defaultContextStorage<Scope>().storage);

describe('context nesting', () => {
  it('inner contexts inherit and inner tags win', () => {
    withContext({ distinctId: 'outer', sessionId: 's1', tags: { a: 1, b: 1 } }, () => {
      withContext({ tags: { b: 2, c: 2 } }, () => {
        expect(getContextDistinctId()).toBe('outer');
        expect(getContextSessionId()).toBe('s1');
        expect(getTags()).toEqual({ a: 1, b: 2, c: 2 });
      });
      expect(getTags()).toEqual({ a: 1, b: 1 });
    });
    expect(getContextDistinctId()).toBeUndefined();
    expect(getTags()).toEqual({});
  });

  it('fresh starts from nothing', () => {
    withContext({ distinctId: 'outer', tags: { a: 1 } }, () => {
      withContext(
        { tags: { b: 2 } },
        () => {
          expect(getContextDistinctId()).toBeUndefined();
          expect(getTags()).toEqual({ b: 2 });
        },
        { fresh: true },
      );
    });
  });

  it('setters change the current context only', () => {
    withContext({ distinctId: 'a' }, () => {
      withContext({}, () => {
        identifyContext('b');
        setContextSession('sess');
        tag('plan', 'pro');
        setCaptureExceptionCodeVariablesContext(true);
        setCodeVariablesMaskPatternsContext(['card']);
        setCodeVariablesIgnorePatternsContext(['^tmp']);
        expect(getContextDistinctId()).toBe('b');
        expect(getContextSessionId()).toBe('sess');
        expect(getTags()).toEqual({ plan: 'pro' });
      });
      expect(getContextDistinctId()).toBe('a');
      expect(getContextSessionId()).toBeUndefined();
      expect(getTags()).toEqual({});
    });
  });

  it('outside any context the setters are no-ops', () => {
    tag('x', 1);
    identifyContext('nobody');
    expect(getTags()).toEqual({});
    expect(getContextDistinctId()).toBeUndefined();
  });

  it('code-variable overrides inherit', () => {
    const store = current();
    store.withContext(
      { captureExceptionCodeVariables: true, codeVariablesMaskPatterns: ['x'] },
      () => {
        store.withContext({ codeVariablesIgnorePatterns: ['^y'] }, () => {
          const scope = store.current();
          expect(scope?.captureExceptionCodeVariables).toBe(true);
          expect(scope?.codeVariablesMaskPatterns).toEqual(['x']);
          expect(scope?.codeVariablesIgnorePatterns).toEqual(['^y']);
        });
      },
    );
  });

  it('groups merge, inner keys win', () => {
    const store = current();
    store.withContext({ groups: { company: 'acme', team: 't1' } }, () => {
      store.withContext({ groups: { team: 't2' } }, () => {
        expect(store.current()?.groups).toEqual({ company: 'acme', team: 't2' });
      });
    });
  });

  it('the data passed in is not mutated by tag()', () => {
    const tags = { a: 1 };
    withContext({ tags }, () => tag('b', 2));
    expect(tags).toEqual({ a: 1 });
  });
});

describe('isolation', () => {
  it('1,000 interleaved async tasks each see only their own context', async () => {
    const seen = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        withContext({ distinctId: `user-${i}`, tags: { i } }, async () => {
          for (let step = 0; step < 3; step++) {
            await sleep(Math.floor(Math.random() * 5));
            tag(`step${step}`, i);
            withContext({ tags: { inner: i } }, () => {
              if (getTags().inner !== i) throw new Error('inner leaked');
            });
          }
          return { id: getContextDistinctId(), tags: getTags() };
        }),
      ),
    );
    seen.forEach((s, i) => {
      expect(s.id).toBe(`user-${i}`);
      expect(s.tags).toEqual({ i, step0: i, step1: i, step2: i });
    });
  });
});

describe('storage', () => {
  it('is injectable', () => {
    const calls: string[] = [];
    let value: Scope | undefined;
    const storage: ContextStorage<Scope> = {
      run(store, fn) {
        calls.push('run');
        const prev = value;
        value = store;
        try {
          return fn();
        } finally {
          value = prev;
        }
      },
      get() {
        calls.push('get');
        return value;
      },
    };
    const store = new ContextStore(storage);
    store.withContext({ distinctId: 'x' }, () => {
      expect(store.current()?.distinctId).toBe('x');
    });
    expect(calls).toEqual(['get', 'run', 'get']);
  });

  it('finds AsyncLocalStorage at run time', () => {
    expect(defaultContextStorage().async).toBe(true);
  });

  it("without AsyncLocalStorage the context is never another task's", async () => {
    const saved = (process as { getBuiltinModule?: unknown }).getBuiltinModule;
    (process as { getBuiltinModule?: unknown }).getBuiltinModule = undefined;
    try {
      const { storage, async } = defaultContextStorage<Scope>();
      expect(async).toBe(false);
      const store = new ContextStore(storage);
      const results = await Promise.all(
        [1, 2, 3].map((i) =>
          store.withContext({ distinctId: `u${i}` }, async () => {
            const before = store.current()?.distinctId;
            await sleep(1);
            return { before, after: store.current()?.distinctId };
          }),
        ),
      );
      expect(results).toEqual([
        { before: 'u1', after: undefined },
        { before: 'u2', after: undefined },
        { before: 'u3', after: undefined },
      ]);
    } finally {
      (process as { getBuiltinModule?: unknown }).getBuiltinModule = saved;
    }
  });
});
