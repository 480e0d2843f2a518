/**
 * Application templates (core/app-template.ts): the forms of the dashboard's Submit page, kept
 * in the database (one row per name, read by every replica); admins store them as YAML text or
 * JSON and remove them.
 */
import { Type, type Static } from 'typebox';
import { DateTime, ref } from './common.js';

const Num = Type.Number();

export const ApplicationParameterSchema = Type.Object(
  {
    name: Type.String(),
    label: Type.String(),
    type: Type.Union([Type.Literal('number'), Type.Literal('string'), Type.Literal('choice'), Type.Literal('file')]),
    help: Type.Optional(Type.String()),
    required: Type.Optional(Type.Boolean()),
    min: Type.Optional(Num),
    max: Type.Optional(Num),
    step: Type.Optional(Num),
    integer: Type.Optional(Type.Boolean()),
    pattern: Type.Optional(Type.String()),
    maxLength: Type.Optional(Type.Integer()),
    options: Type.Optional(Type.Array(Type.String())),
    default: Type.Optional(Type.Union([Type.Number(), Type.String()])),
  },
  { $id: 'ApplicationParameter', description: 'One parameter of an application form.' },
);
export type ApplicationParameter = Static<typeof ApplicationParameterSchema>;

export const ApplicationTemplateSchema = Type.Object(
  {
    name: Type.String(),
    title: Type.String(),
    description: Type.Optional(Type.String()),
    parameters: Type.Array(ref(ApplicationParameterSchema)),
    resources: Type.Optional(
      Type.Object({
        cpuTime: Type.Optional(Type.Integer()),
        processors: Type.Optional(Type.Integer()),
        ramMb: Type.Optional(Type.Integer()),
        tags: Type.Optional(Type.Array(Type.String())),
      }),
    ),
    jdl: Type.String(),
  },
  { $id: 'ApplicationTemplate', description: 'An application template: a form that fills a JDL.' },
);
export type ApplicationTemplate = Static<typeof ApplicationTemplateSchema>;

export const ApplicationListSchema = Type.Object(
  { applications: Type.Array(ref(ApplicationTemplateSchema)) },
  { $id: 'ApplicationList', description: 'The application templates, by name.' },
);
export type ApplicationList = Static<typeof ApplicationListSchema>;

export const SubmitApplicationRequestSchema = Type.Object(
  {
    values: Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean(), Type.Null()]), {
      description: 'parameter name → value (numbers may be given as numeric strings)',
    }),
  },
  { $id: 'SubmitApplicationRequest', additionalProperties: false },
);
export type SubmitApplicationRequest = Static<typeof SubmitApplicationRequestSchema>;

export const SubmitApplicationAnswerSchema = Type.Object(
  { jobIds: Type.Array(Type.Integer()), jdl: Type.String({ description: 'the JDL that was submitted' }) },
  { $id: 'SubmitApplicationAnswer', description: 'The jobs submitted and the JDL they came from.' },
);
export type SubmitApplicationAnswer = Static<typeof SubmitApplicationAnswerSchema>;

export const ApplicationYamlSchema = Type.Object(
  {
    name: Type.String(),
    yaml: Type.String({ description: 'the template as applied (comments kept); a template stored as JSON: the YAML it makes' }),
    source: Type.Union([Type.Literal('package'), Type.Literal('admin')], {
      description: "package: shipped in the package's apps/ (inserted when missing); admin: stored by an admin",
    }),
    updatedBy: Type.String({ description: 'who stored it (user@vo; empty for a shipped one)' }),
    updatedAt: DateTime('when it was stored'),
  },
  { $id: 'ApplicationYaml', description: 'An application template as applied: its YAML text, who stored it and when.' },
);
export type ApplicationYaml = Static<typeof ApplicationYamlSchema>;

export const ApplicationRemovedSchema = Type.Object(
  { name: Type.String({ description: 'the template removed' }) },
  { $id: 'ApplicationRemoved', description: 'An application template was removed.' },
);
export type ApplicationRemoved = Static<typeof ApplicationRemovedSchema>;
