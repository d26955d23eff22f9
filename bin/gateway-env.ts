// usage: bin/node bin/gateway-env.ts   (bin/gateway.sh runs: eval "$(node bin/gateway-env.ts)")
//
// Prints, as shell exports, the settings of lib/config.ts that etc/haproxy.cfg reads as "${...}":
// the configuration stays in one place.
import { config } from '../lib/config.ts';
import { USERNAME } from '../lib/limits.ts';
import { commandLine } from './cli.ts';

commandLine(import.meta.filename, {});

const { gateway, jwt } = config;
const settings: Record<string, string> = {
  GATEWAY_ADDR: `127.0.0.1:${gateway.port}`,
  GATEWAY_STATS_ADDR: `127.0.0.1:${gateway.statsPort}`,
  GATEWAY_DIR: gateway.dir,
  GATEWAY_KEYS: jwt.gatewayKeys,
  USERS1_ADDR: gateway.users[0],
  USERS2_ADDR: gateway.users[1],
  ENROLLMENT1_ADDR: gateway.enrollment[0],
  ENROLLMENT2_ADDR: gateway.enrollment[1],
  ENROLLMENT3_ADDR: gateway.enrollment[2],
  JWT_ISSUER: jwt.issuer,
  JWT_AUDIENCE: jwt.audience,
  JWT_CLOCK_SKEW_SECONDS: String(jwt.clockSkewSeconds),
  USERNAME_PATTERN: USERNAME.pattern,
  USERNAME_LENGTHS: `${USERNAME.minLength}:${USERNAME.maxLength}`,
  GATEWAY_LOGIN_FAILURES_PER_MINUTE: String(gateway.loginFailuresPerMinute),
};
// With bin/hosts.sh: the three hosts' namespaces, and the instances' addresses inside each host.
if (gateway.hosts.length) {
  if (gateway.hosts.length !== 3) throw new Error(`GATEWAY_HOSTS must name three network namespaces, got "${gateway.hosts.join(',')}"`);
  Object.assign(settings, {
    GATEWAY_HOSTS: gateway.hosts.join(','),
    HOST1_NETNS: gateway.hosts[0],
    HOST2_NETNS: gateway.hosts[1],
    HOST3_NETNS: gateway.hosts[2],
    HOST_USERS_ADDR: gateway.users[0],
    HOST_ENROLLMENT_ADDR: gateway.enrollment[0],
  });
}
const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;
for (const [name, value] of Object.entries(settings)) console.log(`export ${name}=${quote(value)}`);
