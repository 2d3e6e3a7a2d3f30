// Compose subgraph SDLs with both composers a supergraph may be built with.
// stdin: {"subgraphs": [{"name", "url", "sdl"}], "withClinic": bool}
// stdout: {"apollo": {"errors": [...], "supergraphSdl"}, "guild": {"errors": [...], "supergraphSdl"}}
import { composeServices as composeApollo } from "@apollo/composition";
import { composeServices as composeGuild } from "@theguild/federation-composition";
import { parse, print } from "graphql";
import { typeDefs as clinicTypeDefs } from "../../../deploy/clinic-subgraph/clinic.mjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const subgraphs = input.subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) }));
if (input.withClinic) {
  subgraphs.push({ name: "clinic", url: "http://127.0.0.1:1/graphql", typeDefs: clinicTypeDefs });
}

const messages = (errors) => (errors ?? []).map((e) => e.message);
const apollo = composeApollo(subgraphs);
const guild = composeGuild(subgraphs.map((s) => ({ ...s, typeDefs: parse(print(s.typeDefs)) })));

process.stdout.write(
  JSON.stringify({
    apollo: { errors: messages(apollo.errors), supergraphSdl: apollo.supergraphSdl ?? null },
    guild: { errors: messages(guild.errors), supergraphSdl: guild.supergraphSdl ?? null },
  }),
);
