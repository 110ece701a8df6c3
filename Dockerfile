# Tenet's images, compiled JavaScript on Node.js 24 (for users with Docker, e.g. hack/kind.sh):
#   docker build --target operator -t tenet-operator:dev .   the operator (client-node, webhooks, CA)
#   docker build --target enforcer -t tenet-enforcer:dev .   the sidecar: one bundled file + its addon, no shell
#   docker build --target capture -t tenet-capture:dev .     the capture init container (iptables)
# hack/image/build.sh builds the same two images without Docker from the same sources;
# test/unit/image.test.ts fails when the two disagree.
FROM node:24.22.3-bookworm-slim AS build
# gcc builds the enforcer's SO_ORIGINAL_DST addon (hack/build-addon.sh) against Node's headers.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY hack/build-addon.sh ./hack/build-addon.sh
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY admission ./admission
COPY cli ./cli
COPY common ./common
COPY crds ./crds
COPY enforcer ./enforcer
COPY operator ./operator
COPY pki ./pki
COPY policy ./policy
COPY scans ./scans
COPY signals ./signals
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/cc-debian12:nonroot AS enforcer
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/build/enforcer.mjs /app/enforcer.mjs
COPY --from=build /src/build/origdst.node /app/origdst.node
WORKDIR /app
ENV NODE_ENV=production
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/node", "/app/enforcer.mjs"]

FROM debian:bookworm-slim AS capture
RUN apt-get update && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
COPY hack/image/capture.sh /usr/local/bin/tenet-capture
USER 0:0
ENTRYPOINT ["/bin/sh", "/usr/local/bin/tenet-capture"]

FROM node:24.22.3-bookworm-slim AS operator
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/build ./build
COPY --from=build /src/node_modules ./node_modules
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/node"]
CMD ["/app/build/operator/main.js"]
