import { Keyv } from 'keyv';
import { AsyncMapStore } from './flag-cache-helpers.ts';
import { flagDefinitionsSuite } from './flag-definitions-suite.ts';

// An in-memory Keyv shared by every kit of the test, as one would share any Keyv.
const keyv = new Keyv();
flagDefinitionsSuite({
  name: 'an in-memory Keyv (cache: new Keyv())',
  options: () => ({ cache: keyv }),
  async writeRaw(key, text) {
    // Through the same Keyv (its namespace applies); a string is not our format.
    await keyv.set(key, text);
  },
});

// A custom store, as a user would write one over their own database.
const store = new AsyncMapStore();
flagDefinitionsSuite({
  name: 'a custom Keyv store (cache: store)',
  options: () => ({ cache: store }),
  async writeRaw(key, text) {
    // Raw, under the store's key: not even JSON the first time.
    await store.set(key, text);
  },
});
