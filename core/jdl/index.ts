/**
 * The JDL layer: parse and write DIRAC's ClassAd subset, expand parametric jobs, and turn JDL
 * text into validated job descriptions.
 */

export { getAttribute, isJdlAd, makeAttribute, parseJdl, serializeJdl, type JdlAd, type JdlAttribute, type JdlValue } from './parser.js';
export { expandParametric, isParametric, resolvePlaceholders, type ExpandedJob } from './parametric.js';
export { describeJobList, describeJobs, LOG_LEVELS, type DescribeOptions } from './describe.js';
