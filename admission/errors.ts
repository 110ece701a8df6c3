// The error injection throws for a pod it cannot inject as written (its own module, so inject.ts
// and capture.ts can both throw it without importing each other).

/** The message names the conflict and reads as the end of "Tenet cannot inject its enforcer into this pod: …". */
export class InjectionError extends Error {
  override name = "InjectionError";
}
