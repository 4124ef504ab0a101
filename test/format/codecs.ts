// Every format test runs on both codec backends, so a difference between them shows up here.
import type { Codec } from '../../src/codec/codec.js';
import { jsCodec, nativeCodec } from '../../src/codec/index.js';

export const codecs: readonly Codec[] = [nativeCodec(), jsCodec()];
