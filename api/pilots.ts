/**
 * Pilots: what site admins read about them, and the pilot protocol (core/pilot-protocol.ts:
 * what pilots and job wrappers send and get) under its component names.
 */
import { Type, type Static } from 'typebox';
import {
  HeartbeatAnswerSchema,
  HeartbeatSchema,
  JobStatusAnswerSchema,
  JobStatusReportSchema,
  LogBatchSchema,
  PilotConfigSchema,
  PilotStatusReportSchema,
  RegisterAnswerSchema,
  RegisterRequestSchema,
  RenewedTokenSchema,
  TimeAnswerSchema,
} from '../core/pilot-protocol.js';
import { DateTime, named, Nullable, PilotStateSchema, ref } from './common.js';

const pilotProperties = {
  id: Type.Integer(),
  stamp: Type.String(),
  reference: Nullable(Type.String()),
  site: Type.String(),
  ce: Type.String(),
  ceType: Type.String(),
  queue: Type.String(),
  vo: Type.String(),
  status: PilotStateSchema,
  statusReason: Type.String(),
  benchmark: Nullable(Type.Number({ description: 'DB12 score, null before registration' })),
  clockOffsetSeconds: Nullable(Type.Number()),
  currentJobId: Nullable(Type.Integer()),
  jobsRun: Type.Integer(),
  exitCode: Nullable(Type.Integer()),
  workDir: Nullable(Type.String()),
  fsType: Nullable(Type.String()),
  createdAt: DateTime(),
  lastUpdateAt: DateTime(),
};

export const PilotSchema = Type.Object(pilotProperties, { $id: 'Pilot', description: 'One pilot as the listing shows it.' });
export type Pilot = Static<typeof PilotSchema>;

export const PilotDetailSchema = Type.Object(
  {
    ...pilotProperties,
    environment: Type.Record(Type.String(), Type.Unknown(), {
      description: 'what the pilot reported at registration (core/pilot-protocol.ts EnvironmentReport, plus db12); empty before',
    }),
  },
  { $id: 'PilotDetail', description: 'One pilot with its environment report.' },
);
export type PilotDetail = Static<typeof PilotDetailSchema>;

export const PilotListSchema = Type.Object(
  { pilots: Type.Array(ref(PilotSchema)) },
  { $id: 'PilotList', description: 'Pilots, newest first.' },
);
export type PilotList = Static<typeof PilotListSchema>;

export const PilotLogLineSchema = Type.Object(
  { id: Type.Integer(), at: DateTime(), line: Type.String() },
  { $id: 'PilotLogLine', description: 'One line of a pilot log.' },
);
export type PilotLogLine = Static<typeof PilotLogLineSchema>;

export const PilotLogSchema = Type.Object(
  { pilotId: Type.Integer(), status: PilotStateSchema, lines: Type.Array(ref(PilotLogLineSchema)) },
  { $id: 'PilotLog', description: "A page of a pilot's remote log, in order." },
);
export type PilotLog = Static<typeof PilotLogSchema>;

export const PilotStatusAnswerSchema = Type.Object(
  { status: PilotStateSchema },
  { $id: 'PilotStatusAnswer', description: "The pilot's status after the report." },
);
export type PilotStatusAnswer = Static<typeof PilotStatusAnswerSchema>;

// The pilot protocol, named (the shapes stay in core/ where the pilot reads them).
export const PilotConfigApiSchema = named(
  'PilotConfig',
  PilotConfigSchema,
  "A pilot's settings: its commands, limits and what its queue offers.",
);
export const TimeAnswerApiSchema = named('TimeAnswer', TimeAnswerSchema, 'The server clock.');
export const PilotRegistrationSchema = named(
  'PilotRegistration',
  RegisterRequestSchema,
  'What a pilot reports when it registers: environment, clock offset, DB12.',
);
export const PilotRegistrationAnswerSchema = named(
  'PilotRegistrationAnswer',
  RegisterAnswerSchema,
  'The registration: the pilot status and, once Running, a session token.',
);
export const RenewedTokenApiSchema = named('RenewedToken', RenewedTokenSchema, 'A new short-lived token.');
export const PilotStatusReportApiSchema = named(
  'PilotStatusReport',
  PilotStatusReportSchema,
  'The pilot running, or its end with the reason and exit code.',
);
export const PilotLogBatchSchema = named('PilotLogBatch', LogBatchSchema, "A batch of the pilot's log lines.");
export const JobStatusReportApiSchema = named('JobStatusReport', JobStatusReportSchema, "The job wrapper's status report.");
export const JobStatusAnswerApiSchema = named(
  'JobStatusAnswer',
  JobStatusAnswerSchema,
  'Whether the report was taken, and the job status now.',
);
export const HeartbeatReportSchema = named('HeartbeatReport', HeartbeatSchema, "A running job's heartbeat.");
export const HeartbeatAnswerApiSchema = named(
  'HeartbeatAnswer',
  HeartbeatAnswerSchema,
  "The job's status and its pending commands (each delivered once).",
);

export type {
  HeartbeatAnswer,
  Heartbeat as HeartbeatReport,
  JobStatusAnswer,
  JobStatusReport,
  LogBatch as PilotLogBatch,
  PilotConfig,
  PilotStatusReport,
  RegisterAnswer as PilotRegistrationAnswer,
  RegisterRequest as PilotRegistration,
  RenewedToken,
  TimeAnswer,
} from '../core/pilot-protocol.js';
