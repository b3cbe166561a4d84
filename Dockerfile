# syntax=docker/dockerfile:1
# The m2m-auth server image: docker build -t m2m-auth . (or buildah build, podman build).
# Two stages on the official Node 24 slim image: the first compiles (TypeScript, and better-sqlite3
# from source against this Node's own headers), the second holds Node, the compiled server and its
# production dependencies, runs as the image's `node` user (uid 1000) and writes only to /data.
# Run it with a read-only root filesystem if you like: nothing else is written. docs/deployment.md
# has the details and what it weighs; packages/server/test/deploy/image.test.ts builds and runs it.
#
# The repository is three npm workspaces (packages/sdk, packages/tools, packages/server): all three
# are built, and the image holds the server package as /app, with the SDK and the tools (which the
# server depends on) as plain packages in its node_modules.
#
# Paths of the repository's layout, gathered here: the package manifests, the sources the build
# reads, and what the image keeps of it (APP_FILES below).

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build -------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# The native compile of better-sqlite3 (no prebuilt binary is downloaded).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# npm's own settings for the compile: Node's headers from the image (no download), from source.
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# Dependencies first, so that a change of the sources alone reuses this layer. No install scripts
# here (the repository's own "prepare" builds, and needs the sources); better-sqlite3's is run next.
COPY package.json package-lock.json ./
COPY packages/sdk/package.json ./packages/sdk/
COPY packages/tools/package.json ./packages/tools/
COPY packages/server/package.json ./packages/server/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts \
 && npm rebuild better-sqlite3
COPY tsconfig.base.json ./
COPY packages/sdk/tsconfig.json packages/sdk/tsconfig.build.json ./packages/sdk/
COPY packages/sdk/src ./packages/sdk/src
COPY packages/tools/tsconfig.json packages/tools/tsconfig.build.json ./packages/tools/
COPY packages/tools/src ./packages/tools/src
COPY packages/server/tsconfig.json packages/server/tsconfig.build.json ./packages/server/
COPY packages/server/src ./packages/server/src
# Then the production dependencies only, the SDK and the tools made plain packages (package.json
# and dist/) where npm linked their workspaces, and without what Node never reads when it runs the
# server: TypeScript sources and declarations, source maps, the packages' own tests (@types/node
# comes in as a dependency of protobufjs), the second and third copies of each OpenTelemetry
# package (build/esm and build/esnext, for bundlers; Node loads build/src), and what better-sqlite3's
# compile left beside its addon. /app/out is what the image keeps: the server package.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 && rm node_modules/m2m-auth node_modules/@m2m-auth/sdk node_modules/@m2m-auth/tools \
 && for p in sdk tools; do mkdir "node_modules/@m2m-auth/$p" && cp -r "packages/$p/package.json" "packages/$p/dist" "node_modules/@m2m-auth/$p/"; done \
 && mkdir out && mv packages/server/package.json packages/server/dist node_modules out/ \
 && cd out \
 && find dist node_modules -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
      -o -name '*.test.js' -o -name '*.test.mjs' -o -name '*.test.cjs' -o -name 'tsconfig*.json' \) -delete \
 && find node_modules -type d \( -name test -o -name tests -o -name __tests__ \) -prune -exec rm -rf {} + \
 && rm -rf node_modules/@types node_modules/@opentelemetry/*/build/esm node_modules/@opentelemetry/*/build/esnext \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src binding.gyp build/deps build/*.mk build/Makefile build/config.gypi \
           build/Release/obj build/Release/obj.target build/Release/.deps build/Release/sqlite3.a \
           build/Release/test_extension.node

# --- run ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ARG NODE_IMAGE
# The server package's version (packages/server/package.json; a test keeps them equal) and the
# commit, given at build time.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="m2m-auth" \
      org.opencontainers.image.description="OAuth 2.0 authorization server for machine-to-machine traffic: client credentials to RFC 9068 JWT access tokens" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
# The host defaults are 127.0.0.1; in a container the listeners must take the container's
# interface (publish the admin port on a private address only). The data folder is the volume.
ENV NODE_ENV=production \
    M2M_AUTH_DATA_DIR=/data \
    M2M_AUTH_LISTEN=0.0.0.0:8080 \
    M2M_AUTH_ADMIN_LISTEN=0.0.0.0:8081
WORKDIR /app
# Owned by root and read-only to the server: only /data is its own.
COPY --from=build /app/out/package.json ./
COPY --from=build /app/out/node_modules ./node_modules
COPY --from=build /app/out/dist ./dist
COPY LICENSE ./
RUN mkdir -p /data && chown 1000:1000 /data && chmod 0700 /data
VOLUME ["/data"]
EXPOSE 8080 8081
# Numeric, so that Kubernetes' runAsNonRoot can check it: the base image's `node` user and group.
USER 1000:1000
# Node itself is PID 1: `serve` handles SIGTERM and SIGINT (drain, then exit 0; during the start,
# exit at once) and SIGHUP (TLS reload), and reaps its own worker processes; no init is needed.
# Not `npm start`, whose build step cannot run on a read-only root filesystem.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve"]
