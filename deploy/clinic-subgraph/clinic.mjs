// The example clinic subgraph: it owns Patient demographics as a clinic's EHR knows them (MRN,
// display name) and lists the clinic's patients; PeerBridge adds referrals and consents to the
// same Patient entity (`@key(fields: "id")`), so one query through the gateway crosses both.
//
// Imported by the contract tests (startClinic, typeDefs) and by deploy/compose-supergraph.mjs;
// run by deploy/compose.yaml:
//   CLINIC_PATIENTS='[{"id": "<PeerBridge patient id>", "mrn": "MRN-1", "displayName": "Ada T."}]' \
//   CLINIC_PORT=4001 node deploy/clinic-subgraph/clinic.mjs
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";
import { fileURLToPath } from "node:url";

export const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])

  "A patient as the clinic's EHR holds them."
  type Patient @key(fields: "id") {
    id: ID!
    mrn: String!
    displayName: String!
  }

  type Query {
    clinicPatients: [Patient!]!
    clinicPatient(id: ID!): Patient
  }
`);

export async function startClinic(patients, { host = "127.0.0.1", port = 0 } = {}) {
  const byId = new Map(patients.map((p) => [p.id, p]));
  const resolvers = {
    Query: {
      clinicPatients: () => patients,
      clinicPatient: (_, { id }) => byId.get(id) ?? null,
    },
    Patient: { __resolveReference: ({ id }) => byId.get(id) ?? null },
  };
  const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
  const { url } = await startStandaloneServer(server, { listen: { host, port } });
  return { server, url };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const patients = JSON.parse(process.env.CLINIC_PATIENTS ?? "[]");
  const port = Number(process.env.CLINIC_PORT ?? 4001);
  const { url } = await startClinic(patients, { host: "0.0.0.0", port });
  process.stdout.write(`clinic subgraph on ${url} (${patients.length} patients)\n`);
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
}
