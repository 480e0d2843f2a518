/**
 * The local site: what `wms server start` registers by itself, pilots as child processes of
 * the server's own machine. Only admins manage it (apply, ban, allow, read its pilots): a job
 * there runs beside the server, so a site admin who could change its queues could reach the
 * server. Pure and import-free (the dashboard bundles it).
 */
export const LOCAL_SITE = { site: 'Local.localhost', ce: 'localhost', queue: 'local' } as const;
