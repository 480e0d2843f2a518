/**
 * The API contract: every named request and response shape, and the lists the services
 * register (`API_SCHEMAS`: each lands in the OpenAPI document's `components.schemas` under its
 * `$id`). cli/ and web/ import the types (`import type { JobSummary } from '../api/index.js'`).
 */
import type { TSchema } from 'typebox';
import { ErrorSchema, ProblemSchema } from './common.js';
import {
  ApplicationListSchema,
  ApplicationParameterSchema,
  ApplicationRemovedSchema,
  ApplicationTemplateSchema,
  ApplicationYamlSchema,
  SubmitApplicationAnswerSchema,
  SubmitApplicationRequestSchema,
} from './applications.js';
import { HealthSchema } from './health.js';
import {
  BulkActionRequestSchema,
  BulkResultSchema,
  HeartbeatEntrySchema,
  HistoryEntrySchema,
  JobCountsSchema,
  JobDetailSchema,
  JobHeartbeatsSchema,
  JobHistorySchema,
  JobListSchema,
  JobOutputSchema,
  JobParametersSchema,
  JobStatusListSchema,
  JobSummarySchema,
  SubmitJobsAnswerSchema,
  SubmitJobsRequestSchema,
} from './jobs.js';
import {
  BanStateSchema,
  ExplainJobSchema,
  ExplainResourceSchema,
  MatchAnswerSchema,
  MatchSchema,
  ResourceSchema,
  TaskQueueSchema,
} from './matcher.js';
import {
  HeartbeatAnswerApiSchema,
  HeartbeatReportSchema,
  JobStatusAnswerApiSchema,
  JobStatusReportApiSchema,
  PilotConfigApiSchema,
  PilotDetailSchema,
  PilotListSchema,
  PilotLogBatchSchema,
  PilotLogLineSchema,
  PilotLogSchema,
  PilotRegistrationAnswerSchema,
  PilotRegistrationSchema,
  PilotSchema,
  PilotStatusAnswerSchema,
  PilotStatusReportApiSchema,
  RenewedTokenApiSchema,
  TimeAnswerApiSchema,
} from './pilots.js';
import { SandboxUploadSchema } from './sandboxes.js';
import {
  BanAnswerSchema,
  BanRequestSchema,
  PilotFailureSchema,
  QueueListSchema,
  QueueSchema,
  QueueStatusSchema,
  RegistryAppliedSchema,
  SiteStatusSchema,
} from './sites.js';
import {
  IdentitySchema,
  IssuedTokenSchema,
  IssueTokenRequestSchema,
  RevocationAnswerSchema,
  RevocationListSchema,
  RevocationSchema,
  RevokeTokenRequestSchema,
} from './tokens.js';
import {
  AccountingReportSchema,
  AccountingRowSchema,
  GroupUsageSchema,
  SetShareRequestSchema,
  ShareListSchema,
  ShareSchema,
  UsageSchema,
  UsageWindowSchema,
  UserUsageSchema,
} from './usage.js';

export * from './applications.js';
export * from './common.js';
export * from './health.js';
export * from './jobs.js';
export * from './matcher.js';
export * from './pilots.js';
export * from './sandboxes.js';
export * from './sites.js';
export * from './tokens.js';
export * from './usage.js';

/**
 * The shapes routes receive as bodies. The services give their integers and numbers without a
 * bound of their own the bounds of a database column before registering them (`withBounds`).
 */
export const REQUEST_SCHEMAS: readonly TSchema[] = [
  SubmitJobsRequestSchema,
  BulkActionRequestSchema,
  ResourceSchema,
  IssueTokenRequestSchema,
  RevokeTokenRequestSchema,
  PilotRegistrationSchema,
  PilotStatusReportApiSchema,
  PilotLogBatchSchema,
  JobStatusReportApiSchema,
  HeartbeatReportSchema,
  BanRequestSchema,
  SetShareRequestSchema,
  SubmitApplicationRequestSchema,
];

/** The shapes routes answer. */
export const RESPONSE_SCHEMAS: readonly TSchema[] = [
  ProblemSchema,
  ErrorSchema,
  HealthSchema,
  SubmitJobsAnswerSchema,
  JobSummarySchema,
  JobDetailSchema,
  JobListSchema,
  JobCountsSchema,
  JobStatusListSchema,
  HistoryEntrySchema,
  JobHistorySchema,
  JobParametersSchema,
  HeartbeatEntrySchema,
  JobHeartbeatsSchema,
  JobOutputSchema,
  BulkResultSchema,
  MatchSchema,
  MatchAnswerSchema,
  TaskQueueSchema,
  BanStateSchema,
  ExplainResourceSchema,
  ExplainJobSchema,
  IdentitySchema,
  IssuedTokenSchema,
  RevocationSchema,
  RevocationAnswerSchema,
  RevocationListSchema,
  SandboxUploadSchema,
  PilotSchema,
  PilotDetailSchema,
  PilotListSchema,
  PilotLogLineSchema,
  PilotLogSchema,
  PilotStatusAnswerSchema,
  PilotConfigApiSchema,
  TimeAnswerApiSchema,
  PilotRegistrationAnswerSchema,
  RenewedTokenApiSchema,
  JobStatusAnswerApiSchema,
  HeartbeatAnswerApiSchema,
  QueueSchema,
  QueueListSchema,
  PilotFailureSchema,
  QueueStatusSchema,
  SiteStatusSchema,
  RegistryAppliedSchema,
  BanAnswerSchema,
  AccountingRowSchema,
  AccountingReportSchema,
  UsageWindowSchema,
  GroupUsageSchema,
  UserUsageSchema,
  UsageSchema,
  ShareSchema,
  ShareListSchema,
  ApplicationParameterSchema,
  ApplicationTemplateSchema,
  ApplicationListSchema,
  ApplicationYamlSchema,
  ApplicationRemovedSchema,
  SubmitApplicationAnswerSchema,
];

/** Every named shape, each once. */
export const API_SCHEMAS: readonly TSchema[] = [...REQUEST_SCHEMAS, ...RESPONSE_SCHEMAS];
