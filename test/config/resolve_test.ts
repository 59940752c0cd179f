import assert from "node:assert/strict";
import { UsageError, UserError } from "../../src/cli/errors.ts";
import { EffectiveEnvironment } from "../../src/config/environment.ts";
import {
  type ConfigOptions,
  parseInstanceProfileEnv,
  parseLogDestinations,
  requirePrefix,
  resolveConfig,
} from "../../src/config/resolve.ts";
import type { Secret } from "../../src/config/secret.ts";

const NO_OPTIONS: ConfigOptions = { awsInstanceProfile: false, terse: false };
const env = (vars: Record<string, string>) => new EffectiveEnvironment(vars);

Deno.test("config: defaults with an empty environment", () => {
  const config = resolveConfig(NO_OPTIONS, env({}));
  assert.equal(config.prefix, null);
  assert.equal(config.prefixSource, null);
  assert.deepEqual(config.s3, {
    accessKeyId: null,
    instanceProfile: false,
    region: null,
    endpoint: null,
    storageClass: "STANDARD",
  });
  assert.deepEqual(config.wabs, { accountName: null });
  assert.deepEqual(config.gs, { applicationCredentials: null });
  assert.equal(config.swift.endpointType, "publicURL");
  assert.equal(config.swift.authVersion, "2");
  assert.equal(config.swift.authUrl, null);
  assert.equal(config.gpgKeyId, null);
  assert.equal(config.retries, 100);
  assert.equal(config.tmpDir, null);
  assert.deepEqual(config.log, {
    level: "INFO",
    format: "text",
    destinations: ["stderr", "syslog"],
    syslogFacility: "user",
    syslogSocketOverride: null,
  });
  assert.deepEqual(Object.values(config.secrets), [null, null, null, null, null, null]);
});

Deno.test("config: every environment variable lands in its typed field", () => {
  const config = resolveConfig(
    NO_OPTIONS,
    env({
      WALE_S3_PREFIX: "s3://bucket/p",
      AWS_ACCESS_KEY_ID: "AKIDENV",
      AWS_REGION: "eu-central-1",
      WALE_S3_ENDPOINT: "https+path://minio:9000",
      WALE_S3_STORAGE_CLASS: "STANDARD_IA",
      WABS_ACCOUNT_NAME: "acct",
      GOOGLE_APPLICATION_CREDENTIALS: "/k.json",
      SWIFT_AUTHURL: "https://keystone/v3",
      SWIFT_USER: "u",
      SWIFT_TENANT: "t",
      SWIFT_REGION: "r",
      SWIFT_ENDPOINT_TYPE: "internalURL",
      SWIFT_AUTH_VERSION: "3",
      SWIFT_DOMAIN_ID: "d1",
      SWIFT_DOMAIN_NAME: "d2",
      SWIFT_TENANT_ID: "t1",
      SWIFT_USER_ID: "u1",
      SWIFT_USER_DOMAIN_ID: "ud1",
      SWIFT_USER_DOMAIN_NAME: "ud2",
      SWIFT_PROJECT_ID: "p1",
      SWIFT_PROJECT_NAME: "p2",
      SWIFT_PROJECT_DOMAIN_ID: "pd1",
      SWIFT_PROJECT_DOMAIN_NAME: "pd2",
      WALE_GPG_KEY_ID: "GPGENV",
      WALE_RETRIES: "7",
      TMPDIR: "/spool",
      WALE_LOG_DESTINATION: "syslog",
      WALE_SYSLOG_FACILITY: "LOCAL3",
      WALD_SYSLOG_SOCKET: "/run/test.sock",
      AWS_SECRET_ACCESS_KEY: "secret-1",
      AWS_SECURITY_TOKEN: "secret-2",
      AWS_SESSION_TOKEN: "secret-3",
      WABS_ACCESS_KEY: "secret-4",
      WABS_SAS_TOKEN: "secret-5",
      SWIFT_PASSWORD: "secret-6",
    }),
  );
  assert.deepEqual(config.prefix, {
    scheme: "s3",
    url: "s3://bucket/p",
    storeName: "bucket",
    pathPrefix: "p/",
  });
  assert.equal(config.prefixSource, "WALE_S3_PREFIX");
  assert.deepEqual(config.s3, {
    accessKeyId: "AKIDENV",
    instanceProfile: false,
    region: "eu-central-1",
    endpoint: "https+path://minio:9000",
    storageClass: "STANDARD_IA",
  });
  assert.deepEqual(config.wabs, { accountName: "acct" });
  assert.deepEqual(config.gs, { applicationCredentials: "/k.json" });
  assert.deepEqual(config.swift, {
    authUrl: "https://keystone/v3",
    user: "u",
    tenant: "t",
    region: "r",
    endpointType: "internalURL",
    authVersion: "3",
    domainId: "d1",
    domainName: "d2",
    tenantId: "t1",
    userId: "u1",
    userDomainId: "ud1",
    userDomainName: "ud2",
    projectId: "p1",
    projectName: "p2",
    projectDomainId: "pd1",
    projectDomainName: "pd2",
  });
  assert.equal(config.gpgKeyId, "GPGENV");
  assert.equal(config.retries, 7);
  assert.equal(config.tmpDir, "/spool");
  assert.deepEqual(config.log, {
    level: "INFO",
    format: "text",
    destinations: ["syslog"],
    syslogFacility: "LOCAL3",
    syslogSocketOverride: "/run/test.sock",
  });
  const revealed = Object.fromEntries(
    Object.entries(config.secrets).map(([key, secret]) => [key, (secret as Secret).reveal()]),
  );
  assert.deepEqual(revealed, {
    awsSecretAccessKey: "secret-1",
    awsSecurityToken: "secret-2",
    awsSessionToken: "secret-3",
    wabsAccessKey: "secret-4",
    wabsSasToken: "secret-5",
    swiftPassword: "secret-6",
  });
});

Deno.test("config: CLI values win over the environment", () => {
  const config = resolveConfig(
    {
      ...NO_OPTIONS,
      awsAccessKeyId: "AKIDCLI",
      wabsAccountName: "cliacct",
      gpgKeyId: "GPGCLI",
      s3Prefix: "s3://cli/x",
      terse: true,
      logFormat: "json",
    },
    env({
      AWS_ACCESS_KEY_ID: "AKIDENV",
      WABS_ACCOUNT_NAME: "envacct",
      WALE_GPG_KEY_ID: "GPGENV",
      WALE_FILE_PREFIX: "file:///env",
    }),
  );
  assert.equal(config.s3.accessKeyId, "AKIDCLI");
  assert.equal(config.wabs.accountName, "cliacct");
  assert.equal(config.gpgKeyId, "GPGCLI");
  assert.equal(config.prefix?.url, "s3://cli/x");
  assert.equal(config.prefixSource, "--s3-prefix");
  assert.equal(config.log.level, "WARNING");
  assert.equal(config.log.format, "json");
});

Deno.test("config: the backend comes from the URL scheme, not the variable", () => {
  const config = resolveConfig(NO_OPTIONS, env({ WALE_S3_PREFIX: "gs://bucket/p" }));
  assert.equal(config.prefix?.scheme, "gs");
  assert.equal(config.prefixSource, "WALE_S3_PREFIX");
  assert.throws(
    () => resolveConfig(NO_OPTIONS, env({ WALE_S3_PREFIX: "ftp://x" })),
    (error: unknown) => error instanceof UserError && error.exitCode === 1,
  );
});

Deno.test("config: AWS_INSTANCE_PROFILE truthiness", () => {
  for (const on of ["1", "true", "TRUE", "True"]) assert.equal(parseInstanceProfileEnv(on), true);
  for (const off of [undefined, "", "0", "false", "FALSE"]) {
    assert.equal(parseInstanceProfileEnv(off), false);
  }
  for (const bad of ["yes", "2", " true"]) {
    assert.throws(() => parseInstanceProfileEnv(bad), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.exitCode, 2);
      assert.match(error.message, /^AWS_INSTANCE_PROFILE must be 1 or true/);
      return true;
    });
  }
  assert.equal(
    resolveConfig(NO_OPTIONS, env({ AWS_INSTANCE_PROFILE: "1" })).s3.instanceProfile,
    true,
  );
  assert.equal(
    resolveConfig({ ...NO_OPTIONS, awsInstanceProfile: true }, env({})).s3.instanceProfile,
    true,
  );
});

Deno.test("config: WALE_RETRIES must be an integer", () => {
  assert.equal(resolveConfig(NO_OPTIONS, env({ WALE_RETRIES: "0" })).retries, 0);
  assert.equal(resolveConfig(NO_OPTIONS, env({ WALE_RETRIES: "" })).retries, 100);
  assert.throws(
    () => resolveConfig(NO_OPTIONS, env({ WALE_RETRIES: "many" })),
    (error: unknown) => error instanceof UserError && /WALE_RETRIES/.test(error.message),
  );
});

Deno.test("config: WALE_LOG_DESTINATION tokens are not trimmed; unknown ones are ignored", () => {
  assert.deepEqual(parseLogDestinations(undefined), ["stderr", "syslog"]);
  assert.deepEqual(parseLogDestinations(""), ["stderr", "syslog"]);
  assert.deepEqual(parseLogDestinations("stderr"), ["stderr"]);
  assert.deepEqual(parseLogDestinations("syslog,stderr"), ["syslog", "stderr"]);
  assert.deepEqual(parseLogDestinations("stderr, syslog"), ["stderr"]);
  assert.deepEqual(parseLogDestinations("file"), []);
});

Deno.test("config: requirePrefix throws 'no storage prefix defined' with a hint", () => {
  const config = resolveConfig(NO_OPTIONS, env({}));
  assert.throws(() => requirePrefix(config), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, "no storage prefix defined");
    assert.equal(error.exitCode, 1);
    for (const name of ["--file-prefix", "--s3-prefix", "WALE_SWIFT_PREFIX", "WALE_WABS_PREFIX"]) {
      assert.ok(error.hint?.includes(name), name);
    }
    return true;
  });
  const withPrefix = resolveConfig(NO_OPTIONS, env({ WALE_FILE_PREFIX: "file:///b" }));
  assert.equal(requirePrefix(withPrefix).pathPrefix, "b/");
});

Deno.test("config: JSON and inspect forms never show secrets or environment values", () => {
  const config = resolveConfig(
    NO_OPTIONS,
    env({
      AWS_SECRET_ACCESS_KEY: "top-secret-key",
      WABS_SAS_TOKEN: "sv=2020&sig=abcdef",
      SOME_OTHER: "private-value",
      WALE_S3_PREFIX: "s3://b/p",
    }),
  );
  const json = JSON.stringify(config);
  const inspected = Deno.inspect(config, { depth: 10 });
  const interpolated = `${config.secrets.awsSecretAccessKey}`;
  for (const text of [json, inspected, interpolated]) {
    assert.ok(!text.includes("top-secret-key"), text);
    assert.ok(!text.includes("abcdef"), text);
    assert.ok(!text.includes("private-value"), text);
  }
  const parsed = JSON.parse(json);
  assert.equal(parsed.secrets.awsSecretAccessKey, "<redacted>");
  assert.equal(parsed.secrets.swiftPassword, null);
  assert.equal(parsed.prefix.url, "s3://b/p");
  assert.ok(parsed.environment.variableNames.includes("SOME_OTHER"));
  assert.match(inspected, /Secret\(<redacted>\)/);
  assert.equal(interpolated, "<redacted>");
  assert.equal(config.secrets.awsSecretAccessKey?.reveal(), "top-secret-key");
});

Deno.test("config: secret values for log redaction skip short values", () => {
  const environment = env({
    AWS_SECRET_ACCESS_KEY: "long-secret",
    SWIFT_PASSWORD: "abc",
    PGPASSWORD: "pgpw",
  });
  assert.deepEqual(environment.secretValuesForRedaction().sort(), ["long-secret", "pgpw"]);
});
