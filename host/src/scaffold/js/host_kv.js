const store = new Map();

export function get(key) {
  return store.get(key);
}

export function set(key, value) {
  store.set(key, value);
}

export function delete_(key) {
  store.delete(key);
}

export { delete_ as delete };

export function listKeys(prefix, limit) {
  return [...store.keys()].filter((k) => k.startsWith(prefix)).sort().slice(0, limit);
}
