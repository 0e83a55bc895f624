// Stripe geometry: pure arithmetic over a ShardLayout, shared by the encoder,
// the decoder and the tests.
import type { ShardLayout } from '../namespace/records.js';
import { PIECE_ALIGN } from './codec.js';

export interface Geometry {
  k: number;
  m: number;
  /** Site of each piece number: k data sites, then m parity sites. */
  sites: readonly string[];
  /** The largest piece; small objects get smaller pieces so they are not padded to a full stripe. */
  maxPieceSize: number;
}

/** Piece sizes and stripe count for an object of `size` bytes. */
export function planStripes(size: number, g: Pick<Geometry, 'k' | 'maxPieceSize'>): { pieceSize: number; lastPieceSize: number; stripes: number } {
  const pieceSize = Math.min(g.maxPieceSize, alignUp(Math.ceil(size / g.k)));
  const stripes = Math.ceil(size / (g.k * pieceSize));
  const rest = size - (stripes - 1) * g.k * pieceSize;
  return { pieceSize, lastPieceSize: stripes === 0 ? 0 : alignUp(Math.ceil(rest / g.k)), stripes };
}

function alignUp(n: number): number {
  return Math.max(PIECE_ALIGN, Math.ceil(n / PIECE_ALIGN) * PIECE_ALIGN);
}

/** Bytes of each piece of stripe `s`. */
export function pieceSizeOf(l: Pick<ShardLayout, 'pieceSize' | 'lastPieceSize' | 'stripes'>, s: number): number {
  return s === l.stripes - 1 ? l.lastPieceSize : l.pieceSize;
}

/** Object bytes per stripe. */
export function stripeBytes(l: Pick<ShardLayout, 'k' | 'pieceSize'>): number {
  return l.k * l.pieceSize;
}

/** Stripes [first, last] that hold bytes [start, end) of the object. */
export function stripesCovering(l: Pick<ShardLayout, 'k' | 'pieceSize'>, start: number, end: number): { first: number; last: number } {
  const per = stripeBytes(l);
  return { first: Math.floor(start / per), last: Math.floor((end - 1) / per) };
}

/** Bytes a shard blob holds on its site. */
export function shardBytes(l: Pick<ShardLayout, 'pieceSize' | 'lastPieceSize' | 'stripes'>): number {
  return l.stripes === 0 ? 0 : l.pieceSize * (l.stripes - 1) + l.lastPieceSize;
}
