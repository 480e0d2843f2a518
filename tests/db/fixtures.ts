/**
 * Builders for db tests: a valid JobDescription (as core/jdl would produce) and a resource
 * description, each with overrides.
 */
import type { JobDescription, JobRequirements } from '../../core/job-model.js';
import type { ResourceDescription } from '../../core/matching.js';

export interface JobOverrides extends Partial<Omit<JobDescription, 'requirements'>> {
  requirements?: Partial<JobRequirements>;
}

export function makeJob(o: JobOverrides = {}): JobDescription {
  const requirements: JobRequirements = {
    owner: 'alice',
    ownerGroup: 'users',
    vo: 'vo1',
    cpuTime: 3600,
    priority: 1,
    sites: [],
    bannedSites: [],
    gridCEs: [],
    platforms: [],
    jobTypes: ['User'],
    tags: [],
    processors: 1,
    ramMb: 0,
    gpus: 0,
    ...o.requirements,
  };
  const { requirements: _r, ...rest } = o;
  return {
    jdl: '[\n  Executable = "/bin/echo";\n  Arguments = "job %j";\n  StdOutput = "std.out";\n  OutputSandbox = {"std.out", "%j.log"};\n]',
    executable: '/bin/echo',
    arguments: 'job %j',
    jobName: 'test-job',
    jobGroup: 'tests',
    jobType: 'User',
    cpuTime: requirements.cpuTime,
    priority: requirements.priority,
    site: requirements.sites.length === 0 ? 'ANY' : requirements.sites.length === 1 ? requirements.sites[0]! : 'Multiple',
    inputSandbox: [],
    outputSandbox: ['std.out'],
    inputData: [],
    parametric: null,
    ...rest,
    requirements,
  };
}

export function makeJobs(n: number, o: JobOverrides = {}): JobDescription[] {
  return Array.from({ length: n }, () => makeJob(o));
}

export function makeResource(o: Partial<ResourceDescription> = {}): ResourceDescription {
  return {
    site: 'SITE-A',
    tags: [],
    requiredTags: [],
    processors: 1,
    ramMb: 2048,
    gpus: 0,
    cpuWork: 86_400,
    ...o,
  };
}
