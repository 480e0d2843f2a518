/** Sandboxes: tar.gz archives named by their SHA-256. */
import { Type, type Static } from 'typebox';

export const SandboxUploadSchema = Type.Object(
  {
    sha256: Type.String(),
    size: Type.Integer(),
    reference: Type.String({ description: 'what to write in a JDL: SB:<sha256>' }),
  },
  { $id: 'SandboxUpload', description: 'The archive stored.' },
);
export type SandboxUpload = Static<typeof SandboxUploadSchema>;
