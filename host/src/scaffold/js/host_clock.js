export function nowMs() {
  return BigInt(Date.now());
}
