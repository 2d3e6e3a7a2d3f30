// Apollo Gateway on loopback over two subgraphs: PeerBridge (URL in argv) and the example
// clinic subgraph (patients in argv). The caller's Authorization header is forwarded to
// PeerBridge, so its scope, tenancy and consent rules apply to every subgraph fetch.
// stdout: a line `READY {"gateway": url, "clinic": url}` (Apollo logs may come first);
// exits when stdin closes.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { startClinic } from "../../../deploy/clinic-subgraph/clinic.mjs";

const { peerbridgeUrl, patients } = JSON.parse(process.argv[2]);
const clinic = await startClinic(patients);

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) request.http.headers.set("authorization", context.authorization);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: "peerbridge", url: peerbridgeUrl },
      { name: "clinic", url: clinic.url },
    ],
  }),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: 0 },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
process.stdout.write(`READY ${JSON.stringify({ gateway: url, clinic: clinic.url })}\n`);

process.stdin.resume();
process.stdin.on("end", async () => {
  await server.stop();
  await clinic.server.stop();
  process.exit(0);
});
