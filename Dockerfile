# One image for every twopc role; the compose file picks the role by command.
# Stage 1 builds dist/ with the dev tools. Stage 2 ships dist/ with production
# dependencies only (no tsx, no TypeScript) and runs as the unprivileged `node` user.
# test/integration/compose.test.ts reads this file and runs its command, user and healthcheck locally.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY client ./client
COPY coordinator ./coordinator
COPY participant ./participant
COPY shared ./shared
COPY wal ./wal
COPY scenarios ./scenarios
COPY test/sim ./test/sim
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The WAL lives on a volume the unprivileged user owns; a new named volume takes this ownership.
RUN mkdir /data && chown node:node /data
VOLUME ["/data"]
ENV TWOPC_DATA=/data
USER node
# /healthz answers while the node recovers, so a slow recovery does not count as unhealthy.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TWOPC_PORT||7000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop): stop taking requests, drain those in flight (--drain-ms-max, 5 s, under
# docker's 10 s grace), checkpoint and sync the WAL, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/bin/twopc.js"]
