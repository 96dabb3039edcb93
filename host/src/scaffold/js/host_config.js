import { state } from './testing.js';

export function get(key) {
  return state.config.get(key);
}

export function all() {
  return [...state.config.entries()].sort();
}
