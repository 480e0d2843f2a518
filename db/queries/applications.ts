/**
 * Application templates (`app_templates`, core/app-template.ts), one row per name, read by every
 * service replica (nothing is kept in a process). `yaml` is the text as applied (comments
 * kept), `template` its validated value; the caller validates, these statements only store.
 * `source` is `package` for the package's `apps/*.yaml`, inserted when missing and never
 * written over (an admin's edit stays), `admin` for what an admin applied.
 */
import type { DbOrHandle } from '../open-db.js';
import { rows } from './raw.js';

export type AppTemplateSource = 'package' | 'admin';

export interface AppTemplateRow {
  name: string;
  /** The text as applied. */
  yaml: string;
  /** The validated template (an `AppTemplate` of core/app-template.ts). */
  template: unknown;
  source: AppTemplateSource;
  updatedBy: string;
  updatedAt: Date;
}

export interface NewAppTemplate {
  name: string;
  yaml: string;
  template: unknown;
  source: AppTemplateSource;
  updatedBy?: string;
}

/** The columns of an `AppTemplateRow`, each named as its field. */
const COLUMNS = 'name, yaml, template, source, updated_by as "updatedBy", updated_at as "updatedAt"';

const paramsOf = (t: NewAppTemplate) => [t.name, t.yaml, JSON.stringify(t.template), t.source, t.updatedBy ?? ''];

/** Every template, by name. */
export async function listAppTemplates(db: DbOrHandle): Promise<AppTemplateRow[]> {
  return rows<AppTemplateRow>(db, `select ${COLUMNS} from app_templates order by name`);
}

/** The template `name`, or null. */
export async function getAppTemplate(db: DbOrHandle, name: string): Promise<AppTemplateRow | null> {
  const found = await rows<AppTemplateRow>(db, `select ${COLUMNS} from app_templates where name = $1::text`, [name]);
  return found[0] ?? null;
}

/** Stores a template, created or replaced (one statement: a reader sees the old row or the new one), and answers its row. */
export async function upsertAppTemplate(db: DbOrHandle, t: NewAppTemplate): Promise<AppTemplateRow> {
  const stored = await rows<AppTemplateRow>(
    db,
    `insert into app_templates (name, yaml, template, source, updated_by, updated_at)
     values ($1::text, $2::text, $3::jsonb, $4::text, $5::text, now())
     on conflict (name) do update
       set yaml = excluded.yaml, template = excluded.template, source = excluded.source,
           updated_by = excluded.updated_by, updated_at = excluded.updated_at
     returning ${COLUMNS}`,
    paramsOf(t),
  );
  return stored[0]!;
}

/** Inserts a template unless one of that name exists (which stays as it is); true when inserted. */
export async function insertAppTemplateIfMissing(db: DbOrHandle, t: NewAppTemplate): Promise<boolean> {
  const inserted = await rows<{ name: string }>(
    db,
    `insert into app_templates (name, yaml, template, source, updated_by)
     values ($1::text, $2::text, $3::jsonb, $4::text, $5::text)
     on conflict (name) do nothing
     returning name`,
    paramsOf(t),
  );
  return inserted.length > 0;
}

/** Deletes the template `name`; true when there was one. */
export async function deleteAppTemplate(db: DbOrHandle, name: string): Promise<boolean> {
  const deleted = await rows<{ name: string }>(db, 'delete from app_templates where name = $1::text returning name', [name]);
  return deleted.length > 0;
}
