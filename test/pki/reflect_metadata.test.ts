/**
 * The metadata shim @peculiar/x509's tsyringe needs: own and inherited metadata, keys, delete,
 * and no replacing an API that is already there.
 */
import { describe, expect, it } from "vitest";
import { installReflectMetadata } from "../../src/pki/reflect_metadata.ts";

type MetadataApi = {
  defineMetadata(key: unknown, value: unknown, target: object, property?: string): void;
  getMetadata(key: unknown, target: object, property?: string): unknown;
  getOwnMetadata(key: unknown, target: object, property?: string): unknown;
  hasMetadata(key: unknown, target: object, property?: string): boolean;
  hasOwnMetadata(key: unknown, target: object, property?: string): boolean;
  getMetadataKeys(target: object, property?: string): unknown[];
  getOwnMetadataKeys(target: object, property?: string): unknown[];
  deleteMetadata(key: unknown, target: object, property?: string): boolean;
  metadata(key: unknown, value: unknown): (target: object, property?: string) => void;
};

describe("installReflectMetadata", () => {
  it("gives Reflect metadata that follows the prototype chain", () => {
    installReflectMetadata();
    const api = Reflect as unknown as MetadataApi;
    class Base {}
    class Derived extends Base {}
    api.defineMetadata("design:paramtypes", [String], Base);
    api.metadata("role", "derived")(Derived, "method");

    expect(api.getMetadata("design:paramtypes", Derived)).toEqual([String]);
    expect(api.getOwnMetadata("design:paramtypes", Derived)).toBeUndefined();
    expect(api.hasMetadata("design:paramtypes", Derived)).toBe(true);
    expect(api.hasOwnMetadata("design:paramtypes", Derived)).toBe(false);
    expect(api.getMetadata("role", Derived, "method")).toBe("derived");
    expect(api.getMetadata("role", Derived)).toBeUndefined();
    expect(api.getOwnMetadataKeys(Derived, "method")).toEqual(["role"]);
    expect(api.getMetadataKeys(Derived)).toEqual(["design:paramtypes"]);
    expect(api.deleteMetadata("design:paramtypes", Base)).toBe(true);
    expect(api.hasMetadata("design:paramtypes", Derived)).toBe(false);
    expect(Object.keys(Reflect)).not.toContain("getMetadata"); // not enumerable
  });

  it("leaves an API that is already installed alone", () => {
    installReflectMetadata();
    const before = (Reflect as unknown as MetadataApi).getMetadata;
    installReflectMetadata();
    expect((Reflect as unknown as MetadataApi).getMetadata).toBe(before);
  });
});
