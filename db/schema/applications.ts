import { jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * Application templates (core/app-template.ts), one row per name, read by every replica. `yaml`
 * is the text as applied (comments kept, shown by `wms app show`); `template` its validated value.
 * `source` is `package` for rows from the package's `apps/*.yaml` (inserted when missing, never overwritten).
 */
export const appTemplates = pgTable('app_templates', {
  name: text('name').primaryKey(),
  yaml: text('yaml').notNull(),
  template: jsonb('template').notNull(),
  source: text('source').notNull().default('admin'),
  updatedBy: text('updated_by').notNull().default(''),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});
