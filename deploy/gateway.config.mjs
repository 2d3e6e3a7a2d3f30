// Hive Gateway (`@graphql-hive/gateway`, pinned in package.json) over the supergraph composed by
// deploy/compose-supergraph.mjs. deploy/compose.yaml runs:
//   hive-gateway supergraph /supergraph/supergraph.graphql --config-path deploy/gateway.config.mjs
// Apollo Router does the same with deploy/router.yaml.
import { defineConfig } from "@graphql-hive/gateway";

export const gatewayConfig = defineConfig({
  // PeerBridge decides scope, tenancy and consent per request from the caller's own token:
  // the gateway passes the Authorization header through to every subgraph, untouched.
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const authorization = request.headers.get("authorization");
      return authorization ? { authorization } : {};
    },
  },
  // PeerBridge's errors (extensions.code NOT_FOUND, CONSENT_REQUIRED, ...) reach the client as
  // sent; they carry no internals.
  maskedErrors: false,
  landingPage: false,
  graphiql: false,
});
