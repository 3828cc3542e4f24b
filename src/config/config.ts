/**
 * The typed configuration, derived from the option table: `Config[group][field]` has the type
 * the key's kind (and format, and choices) gives, and is optional exactly when the key may be
 * unset. Nothing here is written per key, so a new key is one entry in `options.ts`.
 *
 * @module
 */
import { type ConfigGroup, OPTION_TABLE, OPTIONS, type OptionSpec } from "./options.ts";

/** A host and port to listen on. */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
}

/** Every entry of the option table, as its literal type. */
type Option = (typeof OPTION_TABLE)[number];

/** Every key (`listen`, `upstream-ca`, ...). */
export type OptionName = Option["name"];

/** The value a key takes once parsed: its kind, refined by its format and choices. */
export type ValueOf<O extends OptionSpec> = O extends
  { kind: "enum"; choices: readonly (infer C)[] } ? C
  : O extends { kind: "list"; format: "host-ip" } ? Readonly<Record<string, string>>
  : O extends { kind: "list"; format: "route" } ? Readonly<Record<string, readonly string[]>>
  : O extends { kind: "list" } ? readonly string[]
  : O extends { kind: "int" | "duration" } ? number
  : O extends { kind: "bool" } ? boolean
  : O extends { kind: "address" } ? ListenAddress
  : string;

/**
 * Whether a parsed key always holds a value: it has a default (and no `off`), is computed, or is
 * a list (unset: empty). Mirrored at run time by {@linkcode alwaysSet}.
 */
type Always<O> = O extends { allowOff: true } ? false
  : O extends { default: string } | { computed: true } | { kind: "list" } ? true
  : false;

type InGroup<G extends ConfigGroup> = Extract<Option, { group: G; field: string }>;
type Flat<T> = { [K in keyof T]: T[K] } & unknown;

/** One group of {@linkcode Config}: a field per key of the group. */
export type GroupConfig<G extends ConfigGroup> = Flat<
  & { readonly [O in InGroup<G> as Always<O> extends true ? O["field"] : never]: ValueOf<O> }
  & { readonly [O in InGroup<G> as Always<O> extends true ? never : O["field"]]?: ValueOf<O> }
>;

/**
 * The whole, validated configuration, grouped (see {@linkcode ConfigGroup}). Durations are in
 * milliseconds (fields ending in `Ms`).
 */
export type Config =
  & { readonly [G in ConfigGroup]: GroupConfig<G> }
  & {
    /** Where each key came from (`--cert`, `DOTBRIDGE_CERT`, `f.json: "cert"`), for errors. */
    readonly origin: Readonly<Record<OptionName, string>>;
  };

/** Run-time twin of the type-level `Always`: whether a parsed key always holds a value. */
export function alwaysSet(spec: OptionSpec): boolean {
  if (spec.allowOff) return false;
  return spec.default !== undefined || spec.computed === true || spec.kind === "list";
}

/** Whether `value` is what {@linkcode ValueOf} says `spec` holds. */
export function fitsOption(spec: OptionSpec, value: unknown): boolean {
  if (value === undefined) return !alwaysSet(spec);
  switch (spec.kind) {
    case "string":
      return typeof value === "string";
    case "int":
    case "duration":
      return typeof value === "number" && Number.isFinite(value);
    case "bool":
      return typeof value === "boolean";
    case "enum":
      return typeof value === "string" && (spec.choices ?? []).includes(value);
    case "address":
      return typeof value === "object" && value !== null &&
        typeof Reflect.get(value, "hostname") === "string" &&
        typeof Reflect.get(value, "port") === "number";
    case "list":
      if (spec.format === "host-ip") {
        return typeof value === "object" && value !== null && !Array.isArray(value) &&
          Object.values(value).every((v) => typeof v === "string");
      }
      if (spec.format === "route") {
        return typeof value === "object" && value !== null && !Array.isArray(value) &&
          Object.values(value).every((v) =>
            Array.isArray(v) && v.length > 0 && v.every((u) => typeof u === "string")
          );
      }
      return Array.isArray(value) && value.every((v) => typeof v === "string");
  }
}

/**
 * Checks that `value` has the shape of {@linkcode Config}, key by key from the option table. The
 * parser assembles the groups from the table and proves the result with this, so no cast joins
 * the table and the type.
 */
export function isConfig(value: unknown): value is Config {
  if (typeof value !== "object" || value === null) return false;
  const origin: unknown = Reflect.get(value, "origin");
  if (typeof origin !== "object" || origin === null) return false;
  return OPTIONS.every((spec) => {
    if (typeof Reflect.get(origin, spec.name) !== "string") return false;
    if (spec.group === undefined || spec.field === undefined) return true;
    const group: unknown = Reflect.get(value, spec.group);
    return typeof group === "object" && group !== null &&
      fitsOption(spec, Reflect.get(group, spec.field));
  });
}
