export { MessageChannel, type MessageChannelHandlers } from './channel.js'
export { FrpServerRole, TOKEN_MISMATCH, type ServerRoleOptions, type ProxyManager, type ControlHandle } from './server-role.js'
export { FrpClientRole, FRP_COMPAT_VERSION, type ClientRoleOptions, type ClientProxy, type ProxyStatus } from './client-role.js'
export { versionAtLeast, constantTimeEqual, randomRunId } from './util.js'
