# One image for every keygate component: `docker run keygate start <issuer|gateway|profile|orders|files>`.
# Build stage: native modules (better-sqlite3, argon2) compile here; TypeScript compiles to dist/.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin bin
COPY lib lib
COPY gateway gateway
COPY services services
COPY client client
COPY test test
COPY bench bench
RUN npm run build && npm run build:client && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data KEYS_DIR=/keys
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/bin dist/bin
COPY --from=build /app/dist/lib dist/lib
COPY --from=build /app/dist/gateway dist/gateway
COPY --from=build /app/dist/services dist/services
# The issuer imports the CSRF cookie and header names from the browser client's own module.
COPY --from=build /app/dist/client dist/client
# The demo app, served by the gateway at / (it looks for client/dist beside package.json).
COPY --from=build /app/client/dist client/dist
RUN mkdir -p /data /keys && chown node:node /data /keys
USER node
VOLUME ["/data", "/keys"]
ENTRYPOINT ["node", "--enable-source-maps", "dist/bin/keygate.js"]
CMD ["start"]
