/**
 * The jobs page's export: every job of a filtered, sorted listing (all its pages, up to
 * EXPORT_MAX_JOBS), as CSV or JSON, saved by the browser as a file.
 */
import type { JobList, JobSummary } from '../../api/index.js';
import { api, saveBlob } from './api.js';

/** The most jobs one export holds: 20 requests of EXPORT_PAGE, a few MB of CSV. */
export const EXPORT_MAX_JOBS = 10_000;

/** Jobs asked for per request (the services answer at most their `listMaxLimit`, 1000 by default). */
const EXPORT_PAGE = 500;

export type ExportFormat = 'csv' | 'json';

/** The columns of the CSV, in order: every field of a job summary, named as the API names them. */
const CSV_COLUMNS: readonly (keyof JobSummary)[] = [
  'id',
  'jobName',
  'jobGroup',
  'status',
  'minorStatus',
  'applicationStatus',
  'site',
  'owner',
  'ownerGroup',
  'vo',
  'jobType',
  'priority',
  'cpuTime',
  'rescheduleCounter',
  'submittedAt',
  'startExecAt',
  'endExecAt',
  'lastUpdateAt',
  'heartbeatAt',
];

/**
 * Every job of a listing (`pathOf` a page: GET /api/jobs with the filters and the sort), read
 * page by page until its total or EXPORT_MAX_JOBS; `onProgress` hears how many so far. A job
 * that moves between pages while they are read (the list is live) is kept once.
 */
export async function fetchAllJobs(
  pathOf: (page: { limit: number; offset: number }) => string,
  onProgress: (done: number, total: number) => void,
): Promise<{ jobs: JobSummary[]; total: number }> {
  const byId = new Map<number, JobSummary>();
  let total = 0;
  let offset = 0;
  while (offset < EXPORT_MAX_JOBS) {
    const page = await api<JobList>('GET', pathOf({ limit: Math.min(EXPORT_PAGE, EXPORT_MAX_JOBS - offset), offset }));
    total = page.total;
    for (const j of page.jobs) byId.set(j.id, j);
    onProgress(Math.min(byId.size, EXPORT_MAX_JOBS), total);
    offset += page.jobs.length;
    if (page.jobs.length === 0 || offset >= total) break;
  }
  return { jobs: [...byId.values()].slice(0, EXPORT_MAX_JOBS), total };
}

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, a comma or a line break, quotes
 * doubled. Text that a spreadsheet would run as a formula (starting with = + - @, a tab or a
 * carriage return: a job name is anyone's text) gets a leading `'`, as OWASP advises.
 */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** `jobs` as CSV: a header row of the field names, then one row per job, lines ending CRLF. */
export function jobsCsv(jobs: readonly JobSummary[]): string {
  const rows = [CSV_COLUMNS.join(','), ...jobs.map((j) => CSV_COLUMNS.map((c) => csvField(j[c])).join(','))];
  return rows.map((r) => `${r}\r\n`).join('');
}

/** Has the browser save `text` as the file `fileName`. */
export function saveText(text: string, fileName: string, type: string): void {
  saveBlob(new Blob([text], { type }), fileName);
}

/** `jobs-2026-12-04T14-20-03Z.csv`: the export's file name, the time of the export in UTC. */
export function exportFileName(format: ExportFormat, at = new Date()): string {
  return `jobs-${at
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-')}.${format}`;
}

/** The file of `jobs` in `format`: its text and its media type. */
export function exportFile(jobs: readonly JobSummary[], format: ExportFormat): { text: string; type: string } {
  return format === 'csv'
    ? { text: jobsCsv(jobs), type: 'text/csv;charset=utf-8' }
    : { text: `${JSON.stringify(jobs, null, 2)}\n`, type: 'application/json' };
}
