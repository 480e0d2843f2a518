# pilot-wms as a container image: `wms` (dist/cli/main.js) on Node 20, running as the
# unprivileged user `node`. Default command: the services on 0.0.0.0:8080; docker-compose.yml
# runs the same image as service replicas (`server start --no-agents`) and as the agents
# process (`server agents`).
#
#   docker build -t pilot-wms .
#   docker run --rm -p 8080:8080 pilot-wms                        # PGlite in /var/lib/wms
#   docker run --rm pilot-wms server start --host 0.0.0.0 --db postgres://…
#
# Build argument NODE_EXTRA_CA_CERTS: a CA bundle inside the build image that npm should trust
# (for a registry behind an HTTPS-intercepting proxy, e.g. /etc/ssl/certs/ca-certificates.crt
# when the base image trusts that proxy). Empty by default: no effect.

# --- build: every dependency, the TypeScript build, the pilot bundle and the dashboard -------
FROM node:20 AS build
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here (the build is below).
RUN NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS" npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime: production dependencies and what the server reads at run time -----------------
FROM node:20 AS runtime
ENV NODE_ENV=production \
    WMS_HOST=0.0.0.0 \
    WMS_PORT=8080 \
    WMS_DATA_DIR=/var/lib/wms
WORKDIR /opt/pilot-wms
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/apps ./apps
COPY --from=build /src/db/migrations ./db/migrations
COPY --from=build /src/pilot/wrapper.sh ./pilot/wrapper.sh
COPY --from=build /src/site-configs ./site-configs
RUN ln -s /opt/pilot-wms/dist/cli/main.js /usr/local/bin/wms \
 && chmod 0755 dist/cli/main.js \
 && mkdir -p /var/lib/wms \
 && chown node:node /var/lib/wms \
 && chmod 0700 /var/lib/wms
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=15s --start-period=120s --retries=4 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WMS_PORT||8080)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["server", "start", "--host", "0.0.0.0"]
