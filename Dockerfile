# syntax=docker/dockerfile:1
#
# ICU mortality service image.
#   build:  docker build -t icu-mortality .
#   run:    docker run --rm -p 127.0.0.1:3000:3000 icu-mortality
#   own models: docker run -v "$PWD/models:/app/models:ro" ...  (or set MODEL_DIR to another mount)
#
# Two stages: `deps` installs the production dependencies (and drops the ONNX Runtime
# binaries for other platforms), `runtime` copies only what the service needs onto a
# fresh slim base and runs it as the unprivileged `node` user (uid 1000).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
# Set by BuildKit from --platform; amd64 when built without it.
ARG TARGETARCH=amd64
WORKDIR /app
# onnxruntime-node's postinstall downloads CUDA binaries from outside the npm registry when
# it sees a GPU; the CPU and WebGPU providers are already in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# python3, make, g++: better-sqlite3 (the embedded prediction store) is compiled from source by
# `npm run build:sqlite`, as install scripts are off (.npmrc); only node_modules leaves this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships binaries for win32, darwin and both Linux arches (~290 MB): keep
# only this platform's.
RUN npm ci --omit=dev \
 && npm run build:sqlite \
 && npm cache clean --force \
 && ORT_ARCH="$([ "$TARGETARCH" = "arm64" ] && echo arm64 || echo x64)" \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$ORT_ARCH" -exec rm -rf {} +

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    MODEL_DIR=/app/models \
    DATA_DIR=/var/lib/icu-mortality
WORKDIR /app
# The one folder the service writes: the SQLite prediction store and its site key (mount a
# volume there to keep them; several replicas share PostgreSQL instead: DATABASE_URL).
RUN mkdir -p /var/lib/icu-mortality && chown 1000:1000 /var/lib/icu-mortality
# Files stay owned by root and read-only to the service user: a compromised process
# cannot rewrite its own code or the baked-in model.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
# The SMART app's page and scripts: bundled with esbuild (tsx's dependency) when first asked for.
COPY web ./web
# The default model is baked in; mount a model repository over /app/models (read-only is
# enough) or point MODEL_DIR elsewhere to serve other versions.
COPY models ./models
# The base image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
EXPOSE 3000
# The slim base has no curl or wget; Node's fetch does the probe. Liveness only: readiness
# (model loaded) is for the orchestrator's traffic decisions, not for restarting.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# Node runs the TypeScript through tsx (a production dependency); no build step needed.
CMD ["node", "--import", "tsx", "src/server.ts"]
