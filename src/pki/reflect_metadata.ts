/**
 * A minimal `reflect-metadata` for `@peculiar/x509`: it depends on `tsyringe`, which throws at
 * import time unless `Reflect.getMetadata` and its kin exist. Installed by {@linkcode loadX509}
 * before the library is imported, and only when no such API is present.
 *
 * @module
 */

type MetadataKey = unknown;
type PropertyKeyOrUndefined = string | symbol | undefined;

/**
 * Installs, on `Reflect`, the subset of the `reflect-metadata` API that tsyringe (and most
 * decorator libraries) use: define, has, get (own and inherited), keys, delete and the
 * `metadata` decorator. Metadata is kept in a WeakMap per target. Does nothing when
 * `Reflect.getMetadata` is already a function (a real polyfill is loaded).
 *
 * @example
 * ```ts
 * installReflectMetadata();
 * const x509 = await import("@peculiar/x509");
 * ```
 */
export function installReflectMetadata(): void {
  const reflect = Reflect as unknown as Record<string, unknown>;
  if (typeof reflect.getMetadata === "function") return;

  const store = new WeakMap<object, Map<PropertyKeyOrUndefined, Map<MetadataKey, unknown>>>();
  const table = (target: object, property: PropertyKeyOrUndefined, create: boolean) => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    let byKey = byProperty.get(property);
    if (!byKey) {
      if (!create) return undefined;
      byKey = new Map();
      byProperty.set(property, byKey);
    }
    return byKey;
  };
  const findOwner = (key: MetadataKey, target: object, property: PropertyKeyOrUndefined) => {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
      if (table(o, property, false)?.has(key)) return o;
    }
    return undefined;
  };
  const api = {
    defineMetadata(key: MetadataKey, value: unknown, target: object, property?: string | symbol) {
      table(target, property, true)!.set(key, value);
    },
    hasOwnMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return table(target, property, false)?.has(key) ?? false;
    },
    hasMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return findOwner(key, target, property) !== undefined;
    },
    getOwnMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
      return table(target, property, false)?.get(key);
    },
    getMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
      const owner = findOwner(key, target, property);
      return owner === undefined ? undefined : table(owner, property, false)!.get(key);
    },
    getOwnMetadataKeys(target: object, property?: string | symbol): MetadataKey[] {
      return [...(table(target, property, false)?.keys() ?? [])];
    },
    getMetadataKeys(target: object, property?: string | symbol): MetadataKey[] {
      const keys = new Set<MetadataKey>();
      for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
        for (const k of table(o, property, false)?.keys() ?? []) keys.add(k);
      }
      return [...keys];
    },
    deleteMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return table(target, property, false)?.delete(key) ?? false;
    },
    metadata(key: MetadataKey, value: unknown) {
      return (target: object, property?: string | symbol) => {
        table(target, property, true)!.set(key, value);
      };
    },
  };
  for (const [name, fn] of Object.entries(api)) {
    Object.defineProperty(Reflect, name, {
      value: fn,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}
