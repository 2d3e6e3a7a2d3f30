// A test-only "clinic" subgraph: it owns Patient demographics as the clinic's EHR knows them
// (MRN, display name) and lists the clinic's patients; PeerBridge adds referrals and consents.
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

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

export async function startClinic(patients) {
  const byId = new Map(patients.map((p) => [p.id, p]));
  const resolvers = {
    Query: {
      clinicPatients: () => patients,
      clinicPatient: (_, { id }) => byId.get(id) ?? null,
    },
    Patient: { __resolveReference: ({ id }) => byId.get(id) ?? null },
  };
  const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
  const { url } = await startStandaloneServer(server, { listen: { host: "127.0.0.1", port: 0 } });
  return { server, url };
}
