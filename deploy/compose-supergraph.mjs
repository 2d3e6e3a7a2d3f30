// Compose the deployment's supergraph: PeerBridge (its SDL on stdin) and the example clinic
// subgraph, with The Guild's composer (the one Hive Gateway uses), at the URLs the replicas
// have in deploy/compose.yaml. From the repository root:
//   .venv/bin/peerbridge schema | node deploy/compose-supergraph.mjs > deploy/supergraph.graphql
// tests/contract/test_deploy.py composes the current schema the same way and fails when the
// checked-in deploy/supergraph.graphql differs. Errors go to stderr, exit 1.
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";
import { typeDefs as clinicTypeDefs } from "./clinic-subgraph/clinic.mjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const peerbridgeSdl = Buffer.concat(chunks).toString("utf8");

const composed = composeServices([
  { name: "peerbridge", url: "http://api:8000/graphql", typeDefs: parse(peerbridgeSdl) },
  { name: "clinic", url: "http://clinic:4001/graphql", typeDefs: clinicTypeDefs },
]);
if (composed.errors?.length) {
  for (const error of composed.errors) process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
process.stdout.write(composed.supergraphSdl.endsWith("\n") ? composed.supergraphSdl : `${composed.supergraphSdl}\n`);
