// The unmodified @huggingface/hub client against a hub, one call per run, for
// tests/hub/test_hub_js_client.py:
//
//   HUB_ENDPOINT=http://127.0.0.1:PORT HUB_TOKEN=hf_... node client.mjs SCENARIO 'JSON-ARGS'
//
// Prints one JSON line: the client's answer, reduced to plain values (names, shas, sizes).
// Files go in and out through paths on disk, so the test compares bytes itself.
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";

import * as hub from "@huggingface/hub";

const [scenario, rawArgs = "{}"] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const hubUrl = process.env.HUB_ENDPOINT;
const accessToken = process.env.HUB_TOKEN || undefined;
if (!hubUrl) {
	throw new Error("HUB_ENDPOINT is not set");
}
// Every request the client makes, as "METHOD /path" (no query: signed URLs carry one), so a
// test can tell which upload protocol the client chose. The client's own fetch does the work.
const requests = [];
async function recordingFetch(input, init) {
	const url = new URL(input instanceof Request ? input.url : input);
	requests.push(`${init?.method ?? (input instanceof Request ? input.method : "GET")} ${url.pathname}`);
	return await fetch(input, init);
}
const common = { hubUrl, accessToken, fetch: recordingFetch };

async function collect(iterator) {
	const out = [];
	for await (const item of iterator) {
		out.push(item);
	}
	return out;
}

const scenarios = {
	async whoAmI() {
		const me = await hub.whoAmI(common);
		return { name: me.name, type: me.type };
	},

	async createRepo({ repo, private: isPrivate }) {
		return await hub.createRepo({ ...common, repo, private: isPrivate });
	},

	async listModels({ query, owner, additionalFields }) {
		const models = await collect(hub.listModels({ ...common, search: { query, owner }, additionalFields }));
		return models.map((m) => ({ ...m, updatedAt: m.updatedAt.toISOString() }));
	},

	async modelInfo({ name, revision, additionalFields }) {
		const info = await hub.modelInfo({ ...common, name, revision, additionalFields });
		return { ...info, updatedAt: info.updatedAt.toISOString() };
	},

	async fileExists({ repo, path, revision }) {
		return await hub.fileExists({ ...common, repo, path, revision });
	},

	// Each file: {path: in the repo, file: a local file to send}.
	async uploadFiles({ repo, files, useXet, commitTitle }) {
		const blobs = await Promise.all(
			files.map(async ({ path, file }) => ({ path, content: new Blob([await readFile(file)]) })),
		);
		const out = await hub.uploadFiles({ ...common, repo, files: blobs, useXet, commitTitle });
		return { oid: out?.commit.oid, url: out?.commit.url, requests };
	},

	async downloadFile({ repo, path, revision, out }) {
		const blob = await hub.downloadFile({ ...common, repo, path, revision });
		if (blob === null) {
			return null;
		}
		const bytes = Buffer.from(await blob.arrayBuffer());
		await writeFile(out, bytes);
		return { size: blob.size, sha256: createHash("sha256").update(bytes).digest("hex") };
	},

	async listFiles({ repo, path, recursive, revision }) {
		return await collect(hub.listFiles({ ...common, repo, path, recursive, revision }));
	},

	async deleteFile({ repo, path }) {
		const out = await hub.deleteFile({ ...common, repo, path });
		return { oid: out?.commit.oid, url: out?.commit.url };
	},

	async deleteRepo({ repo }) {
		await hub.deleteRepo({ ...common, repo });
		return { exists: await hub.repoExists({ ...common, repo }) };
	},
};

const run = scenarios[scenario];
if (!run) {
	throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(", ")}`);
}
try {
	console.log(JSON.stringify({ ok: true, result: (await run(args)) ?? null }));
} catch (error) {
	// The client's own error (HubApiError carries statusCode and url): the test asserts on it.
	console.log(JSON.stringify({ ok: false, error: { name: error.name, message: error.message, statusCode: error.statusCode } }));
}
