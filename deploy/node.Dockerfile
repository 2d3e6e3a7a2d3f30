# syntax=docker/dockerfile:1
# Node image for the supergraph deployment (deploy/compose.yaml): Hive Gateway, the supergraph
# composition job and the example clinic subgraph, from the repository's locked npm packages.
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY schema.graphql ./
COPY deploy ./deploy
USER node
ENV NODE_ENV=production
