//! Network (IP pool) operations.
//!
//! Plain data only: each struct is one Ganeti opcode, (de)serialized by
//! [`crate::opcodes::OpCode`]. The logic lives in `cmdlib`.

use super::params::NicMode;

opcode! {
    /// Creates a network.
    OpNetworkAdd = "OP_NETWORK_ADD", summary: network_name {
        /// Name of the network. Required.
        network_name: String = required, check non_empty;
        /// IPv4 network in CIDR notation. Required.
        network: String = required, check ipv4_network;
        /// IPv4 gateway of the network. Default: none.
        gateway: Option<String> = (None), check ipv4_address;
        /// IPv6 network in CIDR notation. Default: none.
        network6: Option<String> = (None), check ipv6_network;
        /// IPv6 gateway of the network. Default: none.
        gateway6: Option<String> = (None), check ipv6_address;
        /// Prefix for generated MAC addresses. Default: none.
        mac_prefix: Option<String> = (None), check non_empty;
        /// IP addresses to mark as reserved in the network's pool. Default: none.
        add_reserved_ips: Option<Vec<String>> = (None), check ipv4_address;
        /// Check for IP address conflicts with the network. Default: `true`.
        conflicts_check: bool = (true);
        /// Tags of the new network. Default: empty list.
        tags: Vec<String> = (Vec::new()), check non_empty;
    }
}

opcode! {
    /// Removes a network.
    OpNetworkRemove = "OP_NETWORK_REMOVE", summary: network_name {
        /// Name of the network. Required.
        network_name: String = required, check non_empty;
        /// Remove even if groups still use the network. Default: `false`.
        force: bool = (false);
    }
}

opcode! {
    /// Changes a network's parameters.
    OpNetworkSetParams = "OP_NETWORK_SET_PARAMS", summary: network_name {
        /// Name of the network. Required.
        network_name: String = required, check non_empty;
        /// IPv4 gateway of the network. Default: none.
        gateway: Option<String> = (None), check ipv4_address;
        /// IPv6 network in CIDR notation. Default: none.
        network6: Option<String> = (None), check ipv6_network;
        /// IPv6 gateway of the network. Default: none.
        gateway6: Option<String> = (None), check ipv6_address;
        /// Prefix for generated MAC addresses. Default: none.
        mac_prefix: Option<String> = (None), check non_empty;
        /// IP addresses to mark as reserved in the network's pool. Default: none.
        add_reserved_ips: Option<Vec<String>> = (None), check ipv4_address;
        /// IP addresses to release from the reserved pool. Default: none.
        remove_reserved_ips: Option<Vec<String>> = (None), check ipv4_address;
    }
}

opcode! {
    /// Connects a network to a node group.
    OpNetworkConnect = "OP_NETWORK_CONNECT", summary: network_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// Name of the network. Required.
        network_name: String = required, check non_empty;
        /// How the network is connected (bridged, routed, ...). Required.
        network_mode: NicMode = required;
        /// Link to connect the network to. Required.
        network_link: String = required, check non_empty;
        /// VLAN of the connection. Default: empty string.
        network_vlan: String = (String::new());
        /// Check for IP address conflicts with the network. Default: `true`.
        conflicts_check: bool = (true);
    }
}

opcode! {
    /// Disconnects a network from a node group.
    OpNetworkDisconnect = "OP_NETWORK_DISCONNECT", summary: network_name {
        /// Name of the node group. Required.
        group_name: String = required, check non_empty;
        /// Name of the network. Required.
        network_name: String = required, check non_empty;
    }
}
