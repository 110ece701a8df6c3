# One image, two entrypoints: the operator (args: operator/main.ts) and the injected
# enforcer sidecar (args: enforcer/main.ts). Built by hack/kind.sh for users with Docker; not used in CI.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY common ./common
COPY pki ./pki
COPY crds ./crds
COPY policy ./policy
COPY scans ./scans
COPY operator ./operator
COPY enforcer ./enforcer
USER 65532:65532
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["operator/main.ts"]
