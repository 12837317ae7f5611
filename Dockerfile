# One image for every keygate component: `docker run keygate start <issuer|gateway|profile|orders|files>`.
# Build stage: native modules (better-sqlite3, argon2) compile here; TypeScript compiles to dist/, and the two
# workspace packages (lib/auth = @keygate/fastify-auth, client = @keygate/client) to their own dist/, which is
# what the components import at run time (node_modules/@keygate/* link to those folders).
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY lib/auth/package.json lib/auth/
COPY client/package.json client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin bin
COPY lib lib
COPY gateway gateway
COPY services services
COPY client client
COPY test test
COPY bench bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 DATA_DIR=/data KEYS_DIR=/keys
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/bin dist/bin
COPY --from=build /app/dist/lib dist/lib
COPY --from=build /app/dist/gateway dist/gateway
COPY --from=build /app/dist/services dist/services
# The packages, as the components import them: the verification plugin, and the browser client (the issuer
# takes its CSRF cookie and header names from it; its dist/ also holds the demo the gateway serves at /).
COPY --from=build /app/lib/auth/package.json lib/auth/
COPY --from=build /app/lib/auth/dist lib/auth/dist
COPY --from=build /app/client/package.json client/
COPY --from=build /app/client/dist client/dist
RUN mkdir -p /data /keys && chown node:node /data /keys
USER node
VOLUME ["/data", "/keys"]
ENTRYPOINT ["node", "--enable-source-maps", "dist/bin/keygate.js"]
CMD ["start"]
