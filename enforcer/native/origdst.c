// The original destination of a connection that iptables REDIRECTed to the enforcer: Node has no
// API for SO_ORIGINAL_DST, so this Node-API addon asks the kernel (conntrack) for it.
//   originalDst(fd) -> [address, port, family]   ("10.96.0.12", 80, 4) or ("fd00::1", 443, 6)
// Throws with the errno's text when the socket was not redirected or has no conntrack entry.
// Built by hack/build-addon.sh with gcc against the Node headers; no node-gyp.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

static napi_value fail(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == ENOENT ? "ENOENT" : "EORIGDST", msg);
  return NULL;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "originalDst(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr*)&local, &len) != 0) return fail(env, "getsockname", errno);
  struct sockaddr_storage dst;
  memset(&dst, 0, sizeof dst);
  len = sizeof dst;
  int family;
  if (local.ss_family == AF_INET6) {
    // A v4 connection on a dual-stack socket is tracked as v4: try that first for mapped addresses.
    struct sockaddr_in6* l6 = (struct sockaddr_in6*)&local;
    if (IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) && getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0) {
      family = 4;
    } else {
      len = sizeof dst;
      if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0) return fail(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
      family = 6;
    }
  } else if (local.ss_family == AF_INET) {
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) return fail(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    family = 4;
  } else {
    return fail(env, "originalDst", EAFNOSUPPORT);
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  if (family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)&dst;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    port = ntohs(a->sin_port);
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&dst;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    port = ntohs(a->sin6_port);
  }
  napi_value out, v;
  napi_create_array_with_length(env, 3, &out);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 0, v);
  napi_create_int32(env, port, &v);
  napi_set_element(env, out, 1, v);
  napi_create_int32(env, family, &v);
  napi_set_element(env, out, 2, v);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}
