// The Thrift interface osqueryd speaks to its extensions, written for this
// project from the wire facts (field ids, type shapes and method names must
// stay exactly as osqueryd sends them; names of the types are free).

// Request to a plugin, e.g. {"action": "generate", "context": "..."}.
typedef map<string, string> ExtensionPluginRequest
// Rows returned by a plugin.
typedef list<map<string, string>> ExtensionPluginResponse

struct InternalOptionInfo {
  1: string value,
  2: string default_value,
  3: string type,
}

typedef map<string, InternalOptionInfo> InternalOptionList

struct InternalExtensionInfo {
  1: string name,
  2: string version,
  3: string sdk_version,
  4: string min_sdk_version,
}

// osqueryd draws these from 1..=65535; 0 is the core itself.
typedef i64 ExtensionRouteUUID
// item name -> route info (for a table: its column list)
typedef map<string, ExtensionPluginResponse> ExtensionRouteTable
// registry name ("table", "config", ...) -> items
typedef map<string, ExtensionRouteTable> ExtensionRegistry
typedef map<ExtensionRouteUUID, InternalExtensionInfo> InternalExtensionList

enum ExtensionCode {
  EXT_SUCCESS = 0,
  EXT_FAILED = 1,
  EXT_FATAL = 2,
}

struct ExtensionStatus {
  1: i32 code,
  2: string message,
  3: ExtensionRouteUUID uuid,
}

struct ExtensionResponse {
  1: ExtensionStatus status,
  2: ExtensionPluginResponse response,
}

// Declared for completeness; osqueryd never throws it.
exception ExtensionException {
  1: i32 code,
  2: string message,
  3: ExtensionRouteUUID uuid,
}

// Served by every extension (on <manager socket>.<uuid>) and by osqueryd.
service Extension {
  ExtensionStatus ping(),
  ExtensionResponse call(1: string registry, 2: string item, 3: ExtensionPluginRequest request),
  void shutdown(),
}

// Served by osqueryd on its manager socket.
service ExtensionManager extends Extension {
  InternalExtensionList extensions(),
  InternalOptionList options(),
  ExtensionStatus registerExtension(1: InternalExtensionInfo info, 2: ExtensionRegistry registry),
  ExtensionStatus deregisterExtension(1: ExtensionRouteUUID uuid),
  ExtensionResponse query(1: string sql),
  ExtensionResponse getQueryColumns(1: string sql),
}
