export async function resolve(specifier, context, next) {
  const match = /^biogate:plugin\/([a-z-]+)@/.exec(specifier);
  if (match) {
    return { url: new URL(`./host/${match[1]}.js`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
