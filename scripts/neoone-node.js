#!/usr/bin/env node
// A NEO Legacy (2.x) private network of one validator on 127.0.0.1, run by the
// NEO•ONE 2.7.4 full node (npm packages @neo-one/node and @neo-one/node-neo-settings).
// Started by scripts/neoone; arguments: DIR P2P_PORT RPC_PORT MAGIC [SEED]. With SEED
// (HOST:PORT) the node has no consensus and syncs from that peer: a follower.
// The validator key is neo-go's public test key (the same as scripts/neogo): a throwaway.
'use strict';
const { FullNode } = require('@neo-one/node');
const { createMain } = require('@neo-one/node-neo-settings');
const { crypto, common } = require('@neo-one/client-common');

const [dir, p2pPort, rpcPort, magic, seed] = process.argv.slice(2);
const key = crypto.wifToPrivateKey('KxyjQ8eUa4FHt3Gvioyt1Wz29cTUrE4eTqX3yFSk1YFCsPL8uNsY', 0x80);
const validator = common.ecPointToString(crypto.privateKeyToPublicKey(key));
const blockchain = {
  ...createMain({ privateNet: true, standbyValidators: [validator], secondsPerBlock: 1 }),
  messageMagic: Number(magic),
};
const node = new FullNode({
  options: {
    path: `${dir}/chain`,
    blockchain,
    node: seed ? {} : { consensus: { privateKey: common.privateKeyToString(key), privateNet: true } },
    network: {
      listenTCP: { host: '127.0.0.1', port: Number(p2pPort) },
      ...(seed ? { seeds: [`tcp://${seed}`] } : {}),
    },
    rpc: { http: { host: '127.0.0.1', port: Number(rpcPort) } },
    telemetry: { logging: { level: 'warn' } },
  },
});
node.start().then(
  () => console.error(`NEO•ONE on 127.0.0.1:${p2pPort}, rpc ${rpcPort}, magic ${magic}`),
  (err) => {
    console.error('NEO•ONE did not start:', err);
    process.exit(1);
  },
);
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => node.stop().then(() => process.exit(0), () => process.exit(1)));
}
