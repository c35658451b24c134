// A relayed request is several WebSocket messages in a row (open + END one way; response head, DATA
// and END the other). Each `ws.send` is a socket write of its own, and on loopback every write costs
// a system call plus a wake-up of the peer. Corking the socket until the end of the current tick
// sends whatever was written meanwhile as one writev, with no added delay worth measuring.
import type { Socket } from 'node:net';

/** Returns a function to call before each write on `socket`; no-op without a socket. */
export function corkPerTick(socket: Socket | null | undefined): () => void {
  if (!socket) return () => {};
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return () => {
    if (corked || socket.destroyed) return;
    corked = true;
    socket.cork();
    process.nextTick(uncork);
  };
}

/**
 * Like `corkPerTick`, but held until the end of the event loop's current turn (`setImmediate`), so the
 * writes of every socket read handled in this turn leave as one writev. Relayed DATA arrives as pieces
 * of 64 KiB socket reads, several per turn under load; the caller's socket would otherwise take one
 * write per piece.
 */
export function corkPerTurn(socket: Socket | null | undefined): () => void {
  if (!socket) return () => {};
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return () => {
    if (corked || socket.destroyed) return;
    corked = true;
    socket.cork();
    setImmediate(uncork);
  };
}
