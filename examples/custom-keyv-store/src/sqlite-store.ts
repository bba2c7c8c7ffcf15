// A Keyv store on node:sqlite, as small as a store can be: get, set (with a TTL in ms),
// delete, clear. Several processes on one host can share the file. Keyv hands it strings
// (its serialised values) and gets them back.
import { DatabaseSync } from 'node:sqlite';

interface Row {
  value: string;
  expires: number | null;
}

export class SqliteStore {
  private readonly db: DatabaseSync;

  constructor(file: string) {
    this.db = new DatabaseSync(file);
    // The busy timeout first: switching to WAL takes a lock, and processes that open the
    // file at the same moment must wait for it rather than fail with "database is locked".
    this.db.exec(`PRAGMA busy_timeout = 2000; PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS keyv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)`);
  }

  async get(key: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT value, expires FROM keyv WHERE key = ?').get(key) as
      | Row
      | undefined;
    return row && (row.expires === null || row.expires > Date.now()) ? row.value : undefined;
  }

  async set(key: string, value: string, ttl?: number): Promise<boolean> {
    this.db
      .prepare(
        'INSERT INTO keyv VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires',
      )
      .run(key, value, ttl ? Date.now() + ttl : null);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM keyv WHERE key = ?').run(key).changes > 0;
  }

  async clear(): Promise<void> {
    this.db.exec('DELETE FROM keyv');
  }
}
