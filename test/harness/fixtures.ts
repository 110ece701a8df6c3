// The project's own test fixtures (test/fixtures/, written for Tenet in the formats of the
// upstream tools: see test/fixtures/README.md), and where the optional upstream samples live.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";

export const FIXTURES = path.resolve(import.meta.dirname, "../fixtures");

/** The path of a fixture file, relative to test/fixtures/. */
export const fixturePath = (rel: string): string => path.join(FIXTURES, rel);
/** A fixture's text. */
export const fixtureText = (rel: string): string => readFileSync(fixturePath(rel), "utf8");
/** A JSON fixture, parsed afresh on every call (callers may change what they get). */
export const jsonFixture = (rel: string): any => JSON.parse(fixtureText(rel));
/** A YAML fixture (one document), parsed afresh on every call. */
export const yamlFixture = (rel: string): any => YAML.parse(fixtureText(rel));

/**
 * Upstream samples (byte-for-byte copies from Trivy, Trivy Operator, kube-rs, kubewarden, falco
 * and go-spiffe, described in their SOURCES.md) that may sit beside the repository in
 * ../shared/samples. Only the conformance check reads them, and only when they are there;
 * TENET_UPSTREAM_SAMPLES points elsewhere.
 */
export const UPSTREAM_SAMPLES = path.resolve(process.env.TENET_UPSTREAM_SAMPLES ?? path.join(import.meta.dirname, "../../../shared/samples"));
export const upstreamSamplesPresent = (): boolean => existsSync(path.join(UPSTREAM_SAMPLES, "SOURCES.md"));
