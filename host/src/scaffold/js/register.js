// `node --import ./test/register.js --test`: resolves the plugin's `biogate:plugin/...`
// imports to the stand-ins in test/host/ (the gateway provides them in production).
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
